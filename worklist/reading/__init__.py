"""What the reading room does and sees, without HTTP.

Worklist queries, claims, reports and feedback, site status, model information and key images.
The web app's pages and API call these.
"""
