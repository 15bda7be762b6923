"""`callbid simulate`: drive a running server as publishers and a Twilio-style carrier would,
then check that the server's report agrees with what was sent.

`traffic` draws the run up front from one seeded source (callers, what becomes of each
reservation, talk times), `carrier` speaks Twilio's voice webhooks, `tally` keeps the expected
totals and compares them, `run` drives it all, `command` is the command line.
"""
