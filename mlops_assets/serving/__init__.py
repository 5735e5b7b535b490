"""Putting the champion to work: batch predictions in the warehouse (predictions.py) and an
online HTTP endpoint (app.py, holder.py, validation.py). Heavy imports happen inside functions."""
