"""Negotiating agents: counterparty personas, the teacher and the phrasing bank they write from."""
