import Hummingbird
import Logging
import NIOCore

// MARK: - HubRequestContext

/// The request context of every hub route: Hummingbird's basic context plus the client's
/// address, which sign-in throttling counts failures by (docs/security.md).
public struct HubRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's address; nil in the in-process tests (no socket).
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The client's IP address as text, for counting and logging.
    public var clientAddress: String? { remoteAddress?.ipAddress }
}
