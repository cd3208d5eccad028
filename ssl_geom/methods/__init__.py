"""ssl_geom.methods"""
