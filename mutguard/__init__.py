"""mutguard: measures how many mistakes stand between an attacker and cluster-admin."""

__version__ = "0.1.0"
