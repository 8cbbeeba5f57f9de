"""The dashboard's server: FastAPI app, REST routes, websocket runs and the job runner."""
