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
