"""ssl_geom.callbacks"""
