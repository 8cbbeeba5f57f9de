// Frames and payloads carry arrays as {shape, b64: float32 little-endian}; Plotly wants nested lists.
export function unpack(packed) {
  const bytes = Uint8Array.from(atob(packed.b64), (c) => c.charCodeAt(0));
  const flat = new Float32Array(bytes.buffer);
  const nest = (offset, dims) => {
    if (dims.length === 1) return Array.from(flat.subarray(offset, offset + dims[0]));
    const step = dims.slice(1).reduce((a, b) => a * b, 1);
    return Array.from({ length: dims[0] }, (_, i) => nest(offset + i * step, dims.slice(1)));
  };
  return nest(0, packed.shape);
}

// a frame as the websocket (or a reopened run) sends it, with its images, spectra and arrays unpacked
export function unpackFrame(packed) {
  return { ...packed, images: unpack(packed.images), spectra: unpack(packed.spectra),
    arrays: Object.fromEntries(Object.entries(packed.arrays).map(([k, v]) => [k, unpack(v)])) };
}

export const CURVES = ["activation", "runner_up", "elbo", "objective"];

// stored metric curves (a value per step, null where unmeasured) as the plots take them: {x, y} without gaps
export function curvesOf(curves) {
  return Object.fromEntries(CURVES.map((k) => {
    const points = curves[k].map((y, x) => [x, y]).filter(([, y]) => y !== null);
    return [k, { x: points.map((p) => p[0]), y: points.map((p) => p[1]) }];
  }));
}
