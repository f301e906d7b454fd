"""The worklist web app: pages for radiologists and radiographers, the JSON API, auth, audit."""
