"""iomt.capture"""
