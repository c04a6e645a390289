"""iomt.ledger"""
