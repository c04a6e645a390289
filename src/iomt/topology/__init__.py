"""iomt.topology"""
