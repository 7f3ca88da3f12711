"""The staff dashboard: static HTML, CSS and vanilla JS served by the backend (no build step, no CDN)."""
