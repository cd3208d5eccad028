"""ssl_geom.losses"""
