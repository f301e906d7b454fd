"""One router per resource: pages and the JSON API."""
