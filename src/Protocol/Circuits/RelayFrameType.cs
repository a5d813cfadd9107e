namespace SecureChannels.Protocol.Circuits;

/// <summary>The first byte of every relay frame (docs/protocol.md §9.2).</summary>
public enum RelayFrameType : byte
{
    /// <summary>The dialer's first frame: listen or not, names, relay name.</summary>
    Hello = 0x01,

    /// <summary>The relay's answer to HELLO.</summary>
    Welcome = 0x02,

    /// <summary>The sender closes the hop after this frame.</summary>
    GoAway = 0x03,

    /// <summary>Asks for a PONG with the same nonce.</summary>
    Ping = 0x04,

    /// <summary>Answers a PING.</summary>
    Pong = 0x05,

    /// <summary>Opens a circuit to an address.</summary>
    Open = 0x10,

    /// <summary>Accepts an OPEN, with the acceptor's window.</summary>
    Accept = 0x11,

    /// <summary>Refuses an OPEN, with a code.</summary>
    Refuse = 0x12,

    /// <summary>Opaque circuit bytes.</summary>
    Data = 0x13,

    /// <summary>Grants the other side more bytes to send.</summary>
    Credit = 0x14,

    /// <summary>The sender sends no more DATA on the circuit.</summary>
    Close = 0x15,

    /// <summary>The circuit ends now, both ways, with a code.</summary>
    Reset = 0x16,
}
