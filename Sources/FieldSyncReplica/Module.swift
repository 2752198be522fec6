import GRDB; import CZlib; import FieldSyncCore; public enum ReplicaModule {}
