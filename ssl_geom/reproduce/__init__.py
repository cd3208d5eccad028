"""ssl_geom.reproduce"""
