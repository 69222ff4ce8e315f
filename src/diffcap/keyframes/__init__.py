"""diffcap.keyframes"""
