"""ssl_geom.metrics"""
