namespace SecureChannels.Protocol.Circuits;

/// <summary>Why a hop or a circuit ended, or why an OPEN was refused (docs/protocol.md §9.7). Sent as a u16.</summary>
public enum RelayErrorCode : ushort
{
    /// <summary>Graceful.</summary>
    Normal = 0,

    /// <summary>No hop is registered at that address.</summary>
    Unreachable = 1,

    /// <summary>The target refused the circuit.</summary>
    Refused = 2,

    /// <summary>A limit of the relay was reached.</summary>
    LimitExceeded = 3,

    /// <summary>DATA beyond credit, or CREDIT beyond the window.</summary>
    FlowControlViolation = 4,

    /// <summary>A malformed, unexpected or out-of-order frame.</summary>
    ProtocolViolation = 5,

    /// <summary>A newer hop took this hop's address.</summary>
    Superseded = 6,

    /// <summary>The relay is stopping.</summary>
    ShuttingDown = 7,

    /// <summary>The other end's hop ended.</summary>
    PeerGone = 8,

    /// <summary>HELLO asked for a name that no trusted credential grants.</summary>
    NameNotGranted = 9,

    /// <summary>The target did not answer the OPEN in time.</summary>
    OpenTimeout = 10,

    /// <summary>The hop did not drain what was queued for it in time.</summary>
    SlowReader = 11,

    /// <summary>The address names a relay that is unknown or not linked.</summary>
    RouteUnknown = 12,

    /// <summary>A relay HELLO from an identity that is not configured as that peer relay.</summary>
    UnknownPeer = 13,

    /// <summary>The relay failed; nothing is implied about the peer. Unknown codes read as this.</summary>
    InternalError = 14,
}

/// <summary>A hop or circuit ended, or an OPEN was refused, with a <see cref="RelayErrorCode"/>.</summary>
/// <remarks>
/// An <see cref="IOException"/>: to whatever runs over a circuit (a secure channel, any stream code), a reset circuit
/// is a failed transport, exactly like a reset socket, and is handled where socket failures are.
/// </remarks>
public sealed class RelayException : IOException
{
    /// <summary>Creates the error.</summary>
    public RelayException(RelayErrorCode code, string message, bool fromPeer = false)
        : base(message)
    {
        Code = code;
        FromPeer = fromPeer;
    }

    /// <summary>Creates the error with its cause.</summary>
    public RelayException(RelayErrorCode code, string message, Exception innerException)
        : base(message, innerException)
    {
        Code = code;
    }

    /// <summary>The reason code.</summary>
    public RelayErrorCode Code { get; }

    /// <summary>True when the code came from the other side (the relay, or the far end through it).</summary>
    public bool FromPeer { get; }
}
