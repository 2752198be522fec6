import ArgumentParser; import FieldSyncReplica; print("hi")
