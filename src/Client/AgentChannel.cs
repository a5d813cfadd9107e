using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;

namespace SecureChannels.Client;

/// <summary>
/// An end-to-end secure channel between this agent and a peer, over a relay circuit. The relay carries its bytes and
/// cannot read them. If the circuit breaks, the channel ends with the reason (<see cref="Completion"/>); it is never
/// re-opened behind the caller's back, so no message is silently lost in between.
/// </summary>
public sealed class AgentChannel : IAsyncDisposable
{
    private readonly SecureChannel _channel;
    private readonly Circuit _circuit;

    internal AgentChannel(SecureChannel channel, Circuit circuit)
    {
        _channel = channel;
        _circuit = circuit;
    }

    /// <summary>What the handshake proved about the peer: identifier, principal, attributes, delegation hops, expiry.</summary>
    public VerifiedPeer Peer => _channel.Peer;

    /// <summary>The address the circuit was opened to (or, for an incoming channel, the address it reached).</summary>
    public string Address => _circuit.Address;

    /// <summary>The relays the circuit crossed, nearest to the opener first (incoming channels).</summary>
    public IReadOnlyList<string> Via => _circuit.Via;

    /// <summary>The secure channel itself, for what this type does not wrap.</summary>
    public SecureChannel Channel => _channel;

    /// <summary>Completes when the channel ends, with how and why.</summary>
    public Task<ChannelCloseInfo> Completion => _channel.Completion;

    /// <summary>Sends one message.</summary>
    /// <exception cref="SecureChannelException">The channel is closed (the reason is in the exception).</exception>
    public ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default) => _channel.SendAsync(message, cancellationToken);

    /// <summary>The next message, or null once the peer closed gracefully. Dispose it after reading.</summary>
    /// <exception cref="SecureChannelException">The channel ended abnormally (revoked, expired, circuit broken, ...).</exception>
    public ValueTask<ChannelMessage?> ReceiveAsync(CancellationToken cancellationToken = default) => _channel.ReceiveAsync(cancellationToken);

    /// <summary>Closes gracefully, waiting (until <paramref name="cancellationToken"/>) for the peer's close.</summary>
    public Task CloseAsync(CancellationToken cancellationToken = default) => _channel.CloseAsync(cancellationToken);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _channel.DisposeAsync().ConfigureAwait(false);
        await _circuit.DisposeAsync().ConfigureAwait(false);
    }
}
