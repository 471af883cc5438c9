"""The web app for parents and teachers."""
