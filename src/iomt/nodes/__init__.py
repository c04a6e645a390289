"""iomt.nodes"""
