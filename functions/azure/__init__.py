"""Azure Functions (Python v2 model): timer, queue and HTTP triggers."""
