"""Telephony carriers' webhook dialects: their requests parsed to call events, answers rendered."""
