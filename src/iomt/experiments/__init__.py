"""iomt.experiments"""
