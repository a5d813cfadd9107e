namespace SecureChannels.Protocol.Circuits;

/// <summary>
/// A circuit the relay opened toward this agent and that waits for an answer: inspect who opened it, then
/// <see cref="AcceptAsync"/> or <see cref="RefuseAsync"/>. Until answered, the relay holds the opener
/// (and refuses it with <see cref="RelayErrorCode.OpenTimeout"/> after its open timeout).
/// </summary>
public sealed class IncomingCircuit
{
    private readonly RelayLink _link;
    private readonly OpenFrame _open;

    internal IncomingCircuit(RelayLink link, uint id, OpenFrame open)
    {
        _link = link;
        Id = id;
        _open = open;
    }

    /// <summary>The circuit id on this hop (even: the relay allocated it).</summary>
    public uint Id { get; }

    /// <summary>The address the opener asked for (one of this hop's addresses, possibly with <c>@relay</c>).</summary>
    public string Address => _open.Address;

    /// <summary>The opener's identifier as the first relay verified it; null if the relay did not say.</summary>
    public string? Opener => _open.Opener;

    /// <summary>The opener's principal as the first relay verified it; null if it has none or the relay did not say.</summary>
    public string? Principal => _open.Principal;

    /// <summary>The relays the circuit crossed, nearest to the opener first.</summary>
    public IReadOnlyList<string> Via => _open.Via;

    /// <summary>The opener's receive window: this side's initial send credit.</summary>
    internal uint PeerWindow => _open.Window;

    /// <summary>Pending, answered, or ended (guarded by the link's lock).</summary>
    internal IncomingState State { get; set; }

    /// <summary>Why the circuit ended before it was answered (guarded by the link's lock).</summary>
    internal RelayException? Failure { get; set; }

    /// <summary>Accepts the circuit: sends ACCEPT with this side's window and returns the open circuit.</summary>
    /// <exception cref="RelayException">The opener gave up, the relay timed the OPEN out, or the hop ended.</exception>
    /// <exception cref="InvalidOperationException">The circuit was already accepted or refused.</exception>
    public Task<Circuit> AcceptAsync(CancellationToken cancellationToken = default) => _link.AcceptIncomingAsync(this, cancellationToken);

    /// <summary>Refuses the circuit with <paramref name="code"/> (normally <see cref="RelayErrorCode.Refused"/>); the reason is for people and goes to the opener.</summary>
    /// <exception cref="InvalidOperationException">The circuit was already accepted.</exception>
    public ValueTask RefuseAsync(RelayErrorCode code, string reason) => _link.RefuseIncomingAsync(this, code, reason);

    internal enum IncomingState
    {
        Pending,
        Answered,
        Ended,
    }
}
