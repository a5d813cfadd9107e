using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using SecureChannels.Protocol.Identity;
using SecureChannels.Relay.Hops;
using SecureChannels.Relay.Routing;

namespace SecureChannels.Relay.Hosting;

/// <summary>What a running relay tells its host: where it listens, who it is, and what it carries now.</summary>
public sealed class RelayServer
{
    private readonly CircuitSwitch _switch;
    private readonly HopChannelFactory _channels;

    internal RelayServer(CircuitSwitch circuitSwitch, HopChannelFactory channels)
    {
        _switch = circuitSwitch;
        _channels = channels;
    }

    /// <summary>The relay's name in addresses.</summary>
    public string Name => _switch.Name;

    /// <summary>The relay's identifier, which agents pin.</summary>
    public Identifier Identifier => _channels.Identifier;

    /// <summary>The bound hop endpoint (the real port when configured with port 0), once started.</summary>
    public IPEndPoint? HopEndPoint => HopListener?.IPEndPoint;

    /// <summary>The bound HTTP endpoint of /healthz and /metrics, once started; null when disabled.</summary>
    public IPEndPoint? MetricsEndPoint => MetricsListener?.IPEndPoint;

    /// <summary>Hops past HELLO now.</summary>
    public int ConnectionCount => _switch.SessionCount;

    /// <summary>Circuit ends on all hops now (a circuit between two hops counts twice).</summary>
    public int CircuitEndCount => _switch.CircuitCount();

    /// <summary>Whether a link to the peer relay <paramref name="relay"/> is up.</summary>
    public bool IsLinked(string relay) => _switch.IsLinked(relay);

    /// <summary>
    /// DIAGNOSTICS: set to see every relay frame the relay holds in the clear after hop decryption (circuit DATA
    /// carries the end-to-end channel's ciphertext). Called on the forwarding path: keep it fast, copy what you keep.
    /// </summary>
    public Action<ReadOnlyMemory<byte>>? FrameObserver
    {
        get => _switch.FrameObserver;
        set => _switch.FrameObserver = value;
    }

    internal ListenOptions? HopListener { get; set; }

    internal ListenOptions? MetricsListener { get; set; }
}
