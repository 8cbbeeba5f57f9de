"""The server's routes, a router per concern; server/app.py assembles them."""
