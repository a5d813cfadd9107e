namespace SecureChannels.Protocol.Circuits;

/// <summary>Fixed limits of the relay wire protocol (docs/protocol.md §9.2, §9.3); configurable limits live in the relay's options.</summary>
public static class RelayLimits
{
    /// <summary>The relay protocol version carried in HELLO and WELCOME.</summary>
    public const int Version = 1;

    /// <summary>Longest name (of a target or a relay): a DNS label's length, so names fit in logs and DNS alike.</summary>
    public const int MaxNameLength = 63;

    /// <summary>Longest address, <c>target@relay</c>, and longest text field but reasons.</summary>
    public const int MaxAddressLength = 200;

    /// <summary>Longest opener or principal text in OPEN: a principal is a kind (up to 6 characters and ':') and a 256-byte id.</summary>
    public const int MaxPrincipalLength = 300;

    /// <summary>Longest reason text; senders cut longer ones. Reasons are for people, codes for programs.</summary>
    public const int MaxReasonLength = 200;

    /// <summary>Most names in a HELLO or addresses in a WELCOME; the relay's configured limit may be lower.</summary>
    public const int MaxNamesInHello = 64;

    /// <summary>Most relays a circuit's <c>via</c> can list: a circuit crosses at most one relay-to-relay link.</summary>
    public const int MaxVia = 4;

    /// <summary>Bytes of the type and circuit id that start every circuit frame.</summary>
    public const int CircuitHeaderLength = 5;

    /// <summary>Bytes of a PING or PONG nonce.</summary>
    public const int PingNonceLength = 8;
}
