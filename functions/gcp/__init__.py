"""Google Cloud Functions (2nd gen): a Pub/Sub CloudEvent function and an HTTP function."""
