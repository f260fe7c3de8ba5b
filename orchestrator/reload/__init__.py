"""reload"""
