import CCurl; public enum TransportModule {}
