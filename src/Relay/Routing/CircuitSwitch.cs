using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Identity;
using SecureChannels.Relay.Hops;
using SecureChannels.Relay.Telemetry;

namespace SecureChannels.Relay.Routing;

/// <summary>
/// The relay's routing state: which hop holds which address (newest wins, the older hop is told), which peer
/// relays are linked, the admission counters checked before any cryptography, and circuit opening.
/// </summary>
internal sealed partial class CircuitSwitch
{
    /// <summary>The credential attribute whose values are the names a hop may register (§9.3).</summary>
    public const string NameAttribute = RelayAddress.NameAttribute;

    private readonly RelayOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, HopSession> _addresses = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HopSession> _links = new(StringComparer.Ordinal);
    private readonly HashSet<HopSession> _sessions = [];
    private readonly Dictionary<Identifier, int> _perIdentity = [];
    private readonly Dictionary<IPAddress, int> _perAddress = [];
    private int _sockets;
    private int _pendingHandshakes;
    private bool _shuttingDown;

    public CircuitSwitch(IOptions<RelayOptions> options, RelayMetrics metrics, TimeProvider time, ILogger<CircuitSwitch> logger)
    {
        _options = options.Value;
        Metrics = metrics;
        _time = time;
        _logger = logger;
    }

    public RelayMetrics Metrics { get; }

    /// <summary>
    /// DIAGNOSTICS: sees every frame the relay receives from or sends to a hop, after hop decryption: exactly what
    /// the relay process holds in the clear, so tests and the demo can show that circuit payloads stay opaque to it.
    /// Called on the hop's read or write path: it must be fast and must not keep the memory it is shown.
    /// </summary>
    internal Action<ReadOnlyMemory<byte>>? FrameObserver { get; set; }

    public string Name => _options.Name;

    public int SessionCount
    {
        get
        {
            lock (_gate)
            {
                return _sessions.Count;
            }
        }
    }

    public bool IsShuttingDown => Volatile.Read(ref _shuttingDown);

    public bool IsLinked(string relay)
    {
        lock (_gate)
        {
            return _links.ContainsKey(relay);
        }
    }

    public int CircuitCount()
    {
        lock (_gate)
        {
            return _sessions.Sum(static s => s.CircuitCount);
        }
    }

    /// <summary>The cheap, pre-cryptography admission of a socket: totals, pending handshakes, per remote address.</summary>
    public bool TryAdmitSocket(IPAddress? remote, out string refusal)
    {
        lock (_gate)
        {
            if (_shuttingDown)
            {
                refusal = "shutting_down";
            }
            else if (_sockets >= _options.MaxConnections)
            {
                refusal = "max_connections";
            }
            else if (_pendingHandshakes >= _options.MaxPendingHandshakes)
            {
                refusal = "max_pending_handshakes";
            }
            else if (remote is not null && _perAddress.GetValueOrDefault(remote) >= _options.MaxConnectionsPerAddress)
            {
                refusal = "max_connections_per_address";
            }
            else
            {
                _sockets++;
                _pendingHandshakes++;
                if (remote is not null)
                {
                    _perAddress[remote] = _perAddress.GetValueOrDefault(remote) + 1;
                }

                refusal = "";
                return true;
            }

            return false;
        }
    }

    public void HandshakeFinished()
    {
        lock (_gate)
        {
            _pendingHandshakes--;
        }
    }

    public void ReleaseSocket(IPAddress? remote)
    {
        lock (_gate)
        {
            _sockets--;
            if (remote is not null && --_perAddress[remote] == 0)
            {
                _perAddress.Remove(remote);
            }
        }
    }

    /// <summary>
    /// Judges a HELLO on an accepted hop and, if it passes, registers the hop and queues WELCOME. On refusal the
    /// GOAWAY to send is returned instead.
    /// </summary>
    public (HopSession? Session, ReasonFrame Refusal) Establish(SecureChannel hop, HelloFrame hello)
    {
        var peer = hop.Peer;
        if (hello.Relay is not null)
        {
            var configured = _options.Peers.FirstOrDefault(p => p.Name == hello.Relay);
            if (configured is null || configured.Identifier != peer.Identifier.ToString() || hello.Listen || hello.Names.Count > 0)
            {
                return Refuse(RelayErrorCode.UnknownPeer, "This relay has no peer of that name with that identity.");
            }

            var link = Register(hop, hello.Relay, weDialed: false, [], out var linkRefusal);
            return link is null ? Refuse(linkRefusal, RefusalText(linkRefusal)) : (link, default);
        }

        if (!hello.Listen && hello.Names.Count > 0)
        {
            return Refuse(RelayErrorCode.ProtocolViolation, "Names can be registered only by a listening hop.");
        }

        if (hello.Names.Count > _options.MaxNamesPerConnection)
        {
            return Refuse(RelayErrorCode.LimitExceeded, $"At most {_options.MaxNamesPerConnection} names per connection.");
        }

        var granted = peer.Attributes.Entries.TryGetValue(NameAttribute, out var values) ? values : [];
        foreach (var name in hello.Names)
        {
            if (!RelayAddress.IsValidName(name) || !granted.Contains(name))
            {
                return Refuse(RelayErrorCode.NameNotGranted, $"No trusted credential grants the name '{(RelayAddress.IsValidName(name) ? name : "(invalid)")}'.");
            }
        }

        IReadOnlyList<string> addresses = hello.Listen ? [peer.Identifier.ToString(), .. hello.Names.Distinct(StringComparer.Ordinal)] : [];
        var session = Register(hop, null, weDialed: false, addresses, out var refusal);
        return session is null ? Refuse(refusal, RefusalText(refusal)) : (session, default);
    }

    /// <summary>Registers a link this relay dialed to a configured peer relay (it already sent HELLO and got WELCOME).</summary>
    public HopSession? EstablishDialedLink(SecureChannel hop, string peerRelay) => Register(hop, peerRelay, weDialed: true, [], out _);

    /// <summary>An OPEN arrived on <paramref name="from"/>: route it, or refuse it at once.</summary>
    public void Open(HopSession from, uint id, OpenFrame open)
    {
        // The dialer of a hop opens odd ids; a reused live id is a broken peer, not a routing matter.
        var dialerOpened = (id & 1) == 1;
        var fromIsDialer = !from.IsDialedByUs;
        if (dialerOpened != fromIsDialer || from.IsCircuitInUse(id))
        {
            throw new RelayException(RelayErrorCode.ProtocolViolation, "Protocol violation: an OPEN with an id of the wrong parity or one already in use.");
        }

        if (open.Window == 0 || open.Window > _options.MaxCircuitWindow)
        {
            RefuseOpen(from, id, RelayErrorCode.ProtocolViolation, $"A circuit window must be 1 to {_options.MaxCircuitWindow} bytes.");
            return;
        }

        string opener;
        string principal;
        string[] via;
        if (from.PeerRelay is null)
        {
            if (open.Opener is not null || open.Principal is not null || open.Via.Count > 0)
            {
                RefuseOpen(from, id, RelayErrorCode.ProtocolViolation, "Only a peer relay may say who opened a circuit.");
                return;
            }

            (opener, principal, via) = (from.Identifier.ToString(), from.Peer.Principal.ToString(), []);
        }
        else
        {
            if (open.Opener is null || open.Principal is null || open.Via.Contains(Name, StringComparer.Ordinal))
            {
                RefuseOpen(from, id, RelayErrorCode.RouteUnknown, "A relayed OPEN must name its opener and must not loop.");
                return;
            }

            (opener, principal, via) = (open.Opener, open.Principal, [.. open.Via]);
        }

        if (!RelayAddress.TryParse(open.Address, out var address))
        {
            RefuseOpen(from, id, RelayErrorCode.Unreachable, "Not a relay address.");
            return;
        }

        HopSession? target;
        string forwardedAddress;
        if (address.Relay is null || address.Relay == Name)
        {
            lock (_gate)
            {
                target = _addresses.GetValueOrDefault(address.Target);
            }

            forwardedAddress = address.Target;
            if (target is null)
            {
                RefuseOpen(from, id, RelayErrorCode.Unreachable, "No connection is registered at that address.");
                return;
            }
        }
        else
        {
            // A circuit crosses at most one relay-to-relay link: a relayed OPEN is only delivered locally.
            lock (_gate)
            {
                target = from.PeerRelay is null ? _links.GetValueOrDefault(address.Relay) : null;
            }

            forwardedAddress = address.ToString();
            if (target is null)
            {
                RefuseOpen(from, id, RelayErrorCode.RouteUnknown, $"No link to relay '{address.Relay}'.");
                return;
            }

            via = [.. via, Name];
        }

        if (principal.Length > RelayLimits.MaxPrincipalLength)
        {
            RefuseOpen(from, id, RelayErrorCode.LimitExceeded, "The opener's principal is too long to forward.");
            return;
        }

        if (!from.TryReserveWindow(open.Window))
        {
            RefuseOpen(from, id, RelayErrorCode.LimitExceeded, "This connection's circuit windows would exceed MaxQueuedBytesPerConnection.");
            return;
        }

        var circuit = new RelayCircuit(this, from, id, open.Window, target, target.AllocateId());
        var outcome = circuit.Begin(new OpenFrame(forwardedAddress, open.Window, opener, principal, via), _time, _options.OpenTimeout);
        if (outcome != RelayErrorCode.Normal)
        {
            RefuseOpen(from, id, outcome, outcome == RelayErrorCode.Unreachable ? "The target's connection is ending." : "Too many circuits or pending opens on this connection or the target's.");
        }
    }

    /// <summary>A hop ended: its addresses are freed (if still its own) and its circuits end toward their other ends.</summary>
    public void OnHopEnded(HopSession session, RelayErrorCode code)
    {
        lock (_gate)
        {
            if (!_sessions.Remove(session))
            {
                return;
            }

            foreach (var address in session.Addresses)
            {
                if (_addresses.GetValueOrDefault(address) == session)
                {
                    _addresses.Remove(address);
                }
            }

            if (session.PeerRelay is { } relay && _links.GetValueOrDefault(relay) == session)
            {
                _links.Remove(relay);
            }

            if (--_perIdentity[session.Identifier] == 0)
            {
                _perIdentity.Remove(session.Identifier);
            }
        }

        Metrics.ConnectionClosed();
        var forward = code == RelayErrorCode.ShuttingDown ? RelayErrorCode.ShuttingDown : RelayErrorCode.PeerGone;
        foreach (var circuit in session.SnapshotCircuits())
        {
            circuit.OnHopEnded(session, forward);
        }
    }

    /// <summary>Stops admitting hops and tells every hop the relay is going away.</summary>
    public IReadOnlyList<HopSession> BeginShutdown()
    {
        HopSession[] sessions;
        lock (_gate)
        {
            _shuttingDown = true;
            sessions = [.. _sessions];
        }

        foreach (var session in sessions)
        {
            session.Terminate(RelayErrorCode.ShuttingDown, "The relay is shutting down.", sendGoAway: true);
        }

        return sessions;
    }

    private HopSession? Register(SecureChannel hop, string? peerRelay, bool weDialed, IReadOnlyList<string> addresses, out RelayErrorCode refusal)
    {
        var superseded = new List<HopSession>();
        HopSession session;
        lock (_gate)
        {
            var identifier = hop.Peer.Identifier;
            if (_shuttingDown)
            {
                // A hop that finished its handshake after shutdown began is told, as every other hop was.
                refusal = RelayErrorCode.ShuttingDown;
                return null;
            }

            if (_perIdentity.GetValueOrDefault(identifier) >= _options.MaxConnectionsPerIdentity)
            {
                refusal = RelayErrorCode.LimitExceeded;
                return null;
            }

            refusal = RelayErrorCode.Normal;

            session = new HopSession(hop, peerRelay, weDialed, addresses, this, _options, _time, _logger);
            _perIdentity[identifier] = _perIdentity.GetValueOrDefault(identifier) + 1;
            _sessions.Add(session);
            foreach (var address in addresses)
            {
                if (_addresses.TryGetValue(address, out var older) && older != session)
                {
                    superseded.Add(older);
                }

                _addresses[address] = session;
            }

            if (peerRelay is not null)
            {
                if (_links.TryGetValue(peerRelay, out var older))
                {
                    superseded.Add(older);
                }

                _links[peerRelay] = session;
            }
        }

        Metrics.ConnectionOpened();
        foreach (var older in superseded.Distinct())
        {
            LogSuperseded(_logger, older.Identifier, hop.Peer.Identifier);
            older.Terminate(RelayErrorCode.Superseded, "A newer connection registered this connection's address.", sendGoAway: true);
        }

        if (!weDialed)
        {
            session.Enqueue(RelayFrames.Welcome(new WelcomeFrame(Name, addresses, (uint)_options.MaxCircuitWindow, (uint)_options.MaxDataLength)));
        }

        return session;
    }

    private void RefuseOpen(HopSession from, uint id, RelayErrorCode code, string reason)
    {
        Metrics.Refused(code switch
        {
            RelayErrorCode.Unreachable => "unreachable",
            RelayErrorCode.RouteUnknown => "route_unknown",
            RelayErrorCode.LimitExceeded => "limit_exceeded",
            _ => "protocol_violation",
        });
        from.Enqueue(RelayFrames.CircuitReason(RelayFrameType.Refuse, id, code, reason));
    }

    private string RefusalText(RelayErrorCode code) => code == RelayErrorCode.ShuttingDown
        ? "The relay is shutting down."
        : $"At most {_options.MaxConnectionsPerIdentity} connections per identity.";

    private static (HopSession?, ReasonFrame) Refuse(RelayErrorCode code, string reason) => (null, new ReasonFrame(code, reason));

    [LoggerMessage(EventId = 21, Level = LogLevel.Information, Message = "Hop of {Older} superseded by a newer hop of {Newer}")]
    private static partial void LogSuperseded(ILogger logger, Identifier older, Identifier newer);
}
