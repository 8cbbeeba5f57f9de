# The dashboard in a container: CPU torch, the package, and `meiscope serve` on port 8000.
# The model folder is mounted at /app/models by docker-compose.yml (the shipped checkpoint by default).
# Listening on 0.0.0.0 needs a token: run it with -e MEISCOPE_TOKEN=... (16+ URL-safe characters).
FROM python:3.11-slim
WORKDIR /app
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY frontend ./frontend
RUN pip install --no-cache-dir -e .
EXPOSE 8000
CMD ["meiscope", "serve", "--host", "0.0.0.0", "--port", "8000", "--model", "/app/models/tdvae40"]
