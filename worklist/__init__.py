"""The shared state of the ICS: database, archive, job queue, and the web service on top."""
