"""The web interface: server-rendered pages (Jinja2 + HTMX), feeds and linked data.

Pages are a thin edge over the services, like the JSON API: each route parses its
input, calls the service with the viewer's account (so visibility rules are the
API's exactly), and renders a template. Everything works without JavaScript; HTMX
only swaps fragments that the same routes render.
"""
