print("proxy")
