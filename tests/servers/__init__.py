"""Local stand-ins for cloud APIs, spoken to by real SDK clients over 127.0.0.1."""
