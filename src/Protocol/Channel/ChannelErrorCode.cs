namespace SecureChannels.Protocol.Channel;

/// <summary>
/// The reason codes a channel puts on the wire (a 16-bit number). They are deliberately coarse: the peer
/// learns *that* it was refused and in which broad way, never the precise local reason (which stays in
/// <see cref="Exception.Message"/> of <see cref="SecureChannelException"/> and the audit log).
/// </summary>
public enum ChannelErrorCode : ushort
{
    /// <summary>A graceful close: the application is done.</summary>
    Normal = 0,

    /// <summary>The peer broke the protocol: a malformed, unexpected or oversized record.</summary>
    ProtocolError = 1,

    /// <summary>The peer's identity, history or key attestation did not verify.</summary>
    AuthenticationFailed = 2,

    /// <summary>The peer's credentials did not verify, or the access policy denied it.</summary>
    AccessDenied = 3,

    /// <summary>A credential the channel relied on expired.</summary>
    CredentialExpired = 4,

    /// <summary>A credential the channel relied on was revoked.</summary>
    CredentialRevoked = 5,

    /// <summary>Nothing arrived for longer than the idle timeout.</summary>
    IdleTimeout = 6,

    /// <summary>A message exceeded the receiver's size limit.</summary>
    MessageTooLarge = 7,

    /// <summary>The side is shutting down.</summary>
    GoingAway = 8,

    /// <summary>The handshake did not complete in time.</summary>
    HandshakeTimeout = 9,

    /// <summary>The connection ended without a close record.</summary>
    ConnectionLost = 10,
}

/// <summary>
/// A channel failed or was refused. <see cref="Code"/> is what the wire carries; <see cref="Exception.Message"/>
/// is the precise local reason, which never goes on the wire and never contains key material.
/// </summary>
public sealed class SecureChannelException : Exception
{
    /// <summary>Creates an error.</summary>
    public SecureChannelException(ChannelErrorCode code, string message, bool fromPeer = false)
        : base(message)
    {
        Code = code;
        FromPeer = fromPeer;
    }

    /// <summary>Creates an error with its cause.</summary>
    public SecureChannelException(ChannelErrorCode code, string message, Exception innerException)
        : base(message, innerException)
    {
        Code = code;
    }

    /// <summary>The generic reason, as on the wire.</summary>
    public ChannelErrorCode Code { get; }

    /// <summary>True when the peer closed or refused with <see cref="Code"/>; false when this side decided.</summary>
    public bool FromPeer { get; }

    /// <summary>The peer, when it was verified before the refusal (for the audit event).</summary>
    internal VerifiedPeer? Peer { get; init; }
}
