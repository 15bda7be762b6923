"""callbid: pay-per-call real-time bidding and call reservation, Retreaver RTB compatible."""

__version__ = "0.1.0"
