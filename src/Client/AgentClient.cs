using System.Diagnostics;
using System.Net;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using SecureChannels.Client.Delegation;
using SecureChannels.Client.Relays;
using SecureChannels.Client.Reopening;
using SecureChannels.Client.Telemetry;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Policy;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Client;

/// <summary>
/// An agent: its identity, credentials and policy, hops to its relays kept up (reconnecting with back-off and
/// registering its addresses again), channels opened to addresses and channels accepted from peers.
/// <code>
/// await using var agent = new AgentClient(options);
/// await agent.StartAsync(ct);
/// await using var channel = await agent.OpenChannelAsync("billing@edge-eu", ct);
/// </code>
/// </summary>
public sealed partial class AgentClient : IAsyncDisposable
{
    // Incoming circuits wait here until the application accepts them; past this, a new one is refused at once
    // (LimitExceeded), so a burst of opens never grows memory without bound.
    private const int MaxPendingIncoming = 64;

    // How long presenting new credentials may wait for one channel whose peer does not read.
    private static readonly TimeSpan CredentialUpdateTimeout = TimeSpan.FromSeconds(10);

    // How long a refused circuit stays open for the opener to read the refusal before it is reset.
    private static readonly TimeSpan RefusalGrace = TimeSpan.FromSeconds(5);

    private readonly List<RelayConnection> _relays;
    private readonly Channel<IncomingCircuit> _incoming = Channel.CreateBounded<IncomingCircuit>(new BoundedChannelOptions(MaxPendingIncoming) { FullMode = BoundedChannelFullMode.Wait });
    private readonly AttestedChannelKey _channelKey;
    private readonly CredentialVerifier _verifier;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _running = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<AgentChannel, byte> _open = new();
    private readonly Lock _credentialsLock = new();
    private readonly SemaphoreSlim _presenting = new(1, 1);
    private readonly MessagingSettings _messaging;
    private readonly ILogger _logger;
    private IReadOnlyList<CredentialChain> _credentials;
    private int _disposed;
    private int _started;

    /// <summary>Creates the agent; <see cref="StartAsync"/> connects it.</summary>
    public AgentClient(AgentClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.FirstReconnectBackoff, TimeSpan.Zero, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxReconnectBackoff, options.FirstReconnectBackoff, nameof(options));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.MaxReconnectBackoff, TimeSpan.FromDays(1), nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.DefaultRequestTimeout, TimeSpan.FromMilliseconds(1), nameof(options));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.DefaultRequestTimeout, Protocol.Messaging.MessageEnvelope.MaxTimeout, nameof(options));
        ArgumentNullException.ThrowIfNull(options.SerializerOptions, nameof(options));
        ArgumentNullException.ThrowIfNull(options.Identity, nameof(options));
        ArgumentNullException.ThrowIfNull(options.Anchors, nameof(options));
        ArgumentNullException.ThrowIfNull(options.Relays, nameof(options));

        // Names are checked here, once, rather than by every hop attempt (which would retry a bad name forever).
        _ = new RelayLinkOptions { Names = options.Names };
        Options = options;
        _credentials = options.Credentials;
        _channelKey = new AttestedChannelKey(options.Identity, time: options.TimeProvider);
        _verifier = new CredentialVerifier(options.Anchors, options.Revocations, options.TimeProvider);
        _logger = options.LoggerFactory.CreateLogger<AgentClient>();
        Telemetry = new ClientTelemetry(options.MeterFactory);
        Stopping = _stopping.Token;
        _messaging = new MessagingSettings(options.SerializerOptions, options.DefaultRequestTimeout, options.TimeProvider, Telemetry, options.LoggerFactory.CreateLogger<AgentChannel>());
        _relays = [.. options.Relays.Select(r => new RelayConnection(r, this, _logger))];
    }

    /// <summary>The agent's settings.</summary>
    public AgentClientOptions Options { get; }

    /// <summary>The agent's identifier.</summary>
    public Identifier Identifier => Options.Identity.Identifier;

    /// <summary>The credentials the agent presents now.</summary>
    public IReadOnlyList<CredentialChain> Credentials
    {
        get
        {
            lock (_credentialsLock)
            {
                return _credentials;
            }
        }
    }

    /// <summary>How many hops were established so far, all relays together (the first ones, then every reconnect).</summary>
    public int HopsEstablished => _relays.Sum(r => r.Connections);

    /// <summary>Incoming channels waiting for <see cref="AcceptChannelAsync"/> (at most 64; past that, new ones are refused).</summary>
    public int IncomingWaiting => _incoming.Reader.Count;

    internal ClientTelemetry Telemetry { get; }

    /// <summary>Cancelled when the agent starts to stop: what runs on its behalf stops with it.</summary>
    internal CancellationToken Stopping { get; }

    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>
    /// Starts keeping hops to every relay, and completes once each relay was tried once. It throws when none of them
    /// could be joined, with why (one relay: its error; several: an <see cref="AggregateException"/>); the hops are
    /// retried in the background either way, with back-off, until the agent is disposed.
    /// </summary>
    /// <exception cref="SecureChannelException">The only relay refused the hop, or failed to prove its pinned identity.</exception>
    /// <exception cref="RelayException">The only relay refused HELLO (for example a name no credential grants) or did not answer it.</exception>
    /// <exception cref="IOException">The only relay could not be reached.</exception>
    /// <exception cref="System.Net.Sockets.SocketException">The only relay's TCP connection failed: refused, reset (a relay restarting, or one past its pending-handshake limit), or no answer in 10 s.</exception>
    /// <exception cref="TimeoutException">The only relay accepted the hop but sent no WELCOME in time.</exception>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Interlocked.Exchange(ref _started, 1) == 0)
        {
            foreach (var relay in _relays)
            {
                _running.Add(Task.Run(() => relay.RunAsync(_stopping.Token), CancellationToken.None));
            }
        }

        var outcomes = await Task.WhenAll(_relays.Select(r => r.FirstAttemptAsync(cancellationToken))).ConfigureAwait(false);

        // A relay whose hop is up by now counts as joined, whatever its first attempt met (a later StartAsync).
        var failures = outcomes.Where((failure, i) => failure is not null && _relays[i].Current is null).Cast<Exception>().ToList();
        if (failures.Count > 0 && failures.Count == _relays.Count)
        {
            if (failures.Count == 1)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failures[0]);
            }

            throw new AggregateException("No relay could be joined.", failures);
        }
    }

    /// <summary>
    /// Opens a secure channel to <paramref name="address"/> (<c>identifier</c>, <c>name</c> or <c>name@relay</c>) and
    /// checks the peer against the agent's policy. It goes through the relays whose hop is up, in the configured order:
    /// when one cannot open the circuit for a reason another relay might not share (the address is not registered
    /// there, the relay is stopping, a limit, a timeout), the next is tried. With no hop up, it waits for the first.
    /// </summary>
    /// <exception cref="RelayException">No relay could open the circuit (the last one's reason), or the target refused it.</exception>
    /// <exception cref="SecureChannelException">The handshake failed or either side's policy refused.</exception>
    public async Task<AgentChannel> OpenChannelAsync(string address, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_relays.Count == 0)
        {
            throw new InvalidOperationException("The agent has no relay to open channels through.");
        }

        using var activity = ClientTelemetry.Source.StartActivity("securechannels.open", ActivityKind.Client);
        activity?.SetTag("securechannels.address", address);
        var started = Options.TimeProvider.GetTimestamp();
        try
        {
            var circuit = await OpenCircuitAsync(address, cancellationToken).ConfigureAwait(false);
            try
            {
                var presented = Credentials;
                var channel = await SecureChannel.ConnectAsync(circuit, await ChannelOptionsAsync(Options.Policy, cancellationToken, presented, Options.Events).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                if (!Holds(channel.Peer, address))
                {
                    // The CLOSE goes out before the circuit's reset (below) could overtake it, so the peer learns why.
                    await AgentChannel.LingerAsync(AgentChannel.Both(channel.AbortAsync(ChannelErrorCode.AccessDenied, $"The peer reached at '{address}' does not hold that address."), circuit), Options.TimeProvider).ConfigureAwait(false);
                    await channel.DisposeAsync().ConfigureAwait(false);
                    throw new SecureChannelException(ChannelErrorCode.AccessDenied, $"The peer reached at '{address}' ({channel.Peer.Identifier}) does not hold that address: the relay routed the circuit elsewhere.");
                }

                var opened = await TrackAsync(channel, circuit, presented, cancellationToken).ConfigureAwait(false);
                Telemetry.ChannelOpened("outbound", ClientTelemetry.Outcomes.Ok, Options.TimeProvider.GetElapsedTime(started));
                activity?.SetTag("securechannels.peer.chain_length", opened.Peer.ChainLength);
                return opened;
            }
            catch
            {
                await circuit.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
        catch (Exception e) when (e is SecureChannelException or RelayException)
        {
            var refused = e is SecureChannelException { Code: ChannelErrorCode.AccessDenied } or RelayException { Code: RelayErrorCode.Refused };
            Telemetry.ChannelOpened("outbound", refused ? ClientTelemetry.Outcomes.Refused : ClientTelemetry.Outcomes.Failed, Options.TimeProvider.GetElapsedTime(started));
            activity?.SetStatus(ActivityStatusCode.Error, e is SecureChannelException c ? c.Code.ToString() : ((RelayException)e).Code.ToString());
            throw;
        }
    }

    /// <summary>
    /// Opens a channel to <paramref name="address"/> that is opened again whenever its circuit breaks, with the delivery
    /// guarantee <see cref="ReopeningChannelOptions.Delivery"/> states for messages in flight. The first open's failure
    /// is thrown here; later ones are retried with back-off, except refusals, which stop it (see <see cref="ReopeningChannel.Completion"/>).
    /// </summary>
    /// <exception cref="RelayException">No relay could open the first circuit, or the target refused it.</exception>
    /// <exception cref="SecureChannelException">The first handshake failed or either side's policy refused.</exception>
    public Task<ReopeningChannel> OpenReopeningChannelAsync(string address, ReopeningChannelOptions? options = null, CancellationToken cancellationToken = default) =>
        ReopeningChannel.OpenAsync(this, address, options ?? new ReopeningChannelOptions { FirstBackoff = Options.FirstReconnectBackoff, MaxBackoff = Options.MaxReconnectBackoff }, cancellationToken);

    /// <summary>
    /// Spawns a sub-agent in this process: a fresh identity, a credential delegated from this agent's (narrower: a
    /// subset of the attributes and a shorter life, or it is refused), registered with the authority when
    /// <see cref="SubAgentOptions.Registrar"/> is given, and a started client on this agent's relays.
    /// </summary>
    /// <exception cref="CredentialException">The delegation would widen the parent credential (<see cref="CredentialErrorKind.Widened"/>).</exception>
    /// <exception cref="AuthorityException">The authority refused to register the delegation.</exception>
    public Task<SubAgent> SpawnSubAgentAsync(SubAgentOptions options, CancellationToken cancellationToken = default) =>
        SubAgent.SpawnAsync(this, options, cancellationToken);

    // The relay only routes; it is trusted with ciphertext, not with saying who holds an address. As a TLS client
    // checks the name in the server's certificate, the opener checks that the peer it reached is the identifier it
    // asked for, or holds the name through a credential from a trusted authority (attribute relay-name).
    private static bool Holds(VerifiedPeer peer, string address)
    {
        var target = RelayAddress.Parse(address).Target;
        if (Identifier.TryParse(target, out var identifier))
        {
            return peer.Identifier == identifier;
        }

        return peer.Attributes.Entries.TryGetValue(RelayAddress.NameAttribute, out var names) && names.Contains(target, StringComparer.Ordinal);
    }

    private async Task<Circuit> OpenCircuitAsync(string address, CancellationToken cancellationToken)
    {
        RelayException? last = null;
        var tried = new HashSet<RelayConnection>();
        while (true)
        {
            var next = _relays.FirstOrDefault(r => r.Current is not null && !tried.Contains(r));
            if (next?.Current is not { } link)
            {
                if (last is not null)
                {
                    throw last;
                }

                await Task.WhenAny(_relays.Select(r => r.WhenConnectedAsync(cancellationToken))).Unwrap().ConfigureAwait(false);
                continue;
            }

            tried.Add(next);
            try
            {
                return await link.OpenCircuitAsync(address, cancellationToken).ConfigureAwait(false);
            }
            catch (RelayException e) when (e.Code != RelayErrorCode.Refused)
            {
                // The target itself refusing is an answer; anything else may be this relay's, not the address's.
                last = e;
            }
            catch (ObjectDisposedException) when (Volatile.Read(ref _disposed) == 0)
            {
                // The hop ended as it was picked: the same as a relay that could not route.
                last = new RelayException(RelayErrorCode.PeerGone, $"The hop to relay {next.Relay.Identifier} ended.");
            }
        }
    }

    /// <summary>
    /// The next channel a peer opened to this agent and the agent's policy allowed. Circuits whose handshake fails or
    /// whose peer the policy refuses are closed (the peer hears why) and skipped.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The agent was disposed.</exception>
    public async Task<AgentChannel> AcceptChannelAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            IncomingCircuit incoming;
            try
            {
                incoming = await _incoming.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ChannelClosedException)
            {
                throw new ObjectDisposedException(nameof(AgentClient));
            }

            Circuit circuit;
            try
            {
                circuit = await incoming.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (RelayException)
            {
                continue; // The opener gave up or the hop ended meanwhile.
            }

            using var activity = ClientTelemetry.Source.StartActivity("securechannels.accept", ActivityKind.Server);
            var started = Options.TimeProvider.GetTimestamp();
            try
            {
                var presented = Credentials;
                var channel = await SecureChannel.AcceptAsync(circuit, await ChannelOptionsAsync(Options.Policy, cancellationToken, presented, Options.Events).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                var accepted = await TrackAsync(channel, circuit, presented, cancellationToken).ConfigureAwait(false);
                Telemetry.ChannelOpened("inbound", ClientTelemetry.Outcomes.Ok, Options.TimeProvider.GetElapsedTime(started));
                return accepted;
            }
            catch (OperationCanceledException)
            {
                await circuit.DisposeAsync().ConfigureAwait(false);
                throw;
            }
            catch (SecureChannelException e)
            {
                var refused = e.Code == ChannelErrorCode.AccessDenied;
                Telemetry.ChannelOpened("inbound", refused ? ClientTelemetry.Outcomes.Refused : ClientTelemetry.Outcomes.Failed, Options.TimeProvider.GetElapsedTime(started));
                activity?.SetStatus(ActivityStatusCode.Error, e.Code.ToString());
                LogRefusedIncoming(_logger, e.Code, e.Message);

                // The refusal (with its reason) is in flight on the circuit, already half-closed by this side. Resetting
                // the circuit now could overtake it at the opener, which would see a lost connection instead of why;
                // so the circuit is let go once the opener closes its side too, or after a grace period.
                _ = ReleaseRefusedAsync(circuit);
            }
        }
    }

    /// <summary>Every channel peers open to this agent, as they are accepted.</summary>
    public async IAsyncEnumerable<AgentChannel> AcceptChannelsAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            yield return await AcceptChannelAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Presents <paramref name="credentials"/> from now on: in every open channel at once (a CREDENTIAL_UPDATE record,
    /// docs/protocol.md §8.3, so a refreshed credential needs no new handshake) and in channels opened later.
    /// </summary>
    /// <exception cref="ArgumentException">A chain is not about this agent; nothing was changed.</exception>
    public Task UpdateCredentialsAsync(IReadOnlyList<CredentialChain> credentials, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        foreach (var chain in credentials)
        {
            // Checked before anything changes: a set the peers would refuse must not become what every handshake presents.
            ArgumentNullException.ThrowIfNull(chain, nameof(credentials));
            if (chain.Leaf.Credential.Subject != Identifier)
            {
                throw new ArgumentException($"A credential chain is about {chain.Leaf.Credential.Subject}, not this agent ({Identifier}).", nameof(credentials));
            }
        }

        return ChangeCredentialsAsync(_ => credentials, cancellationToken);
    }

    // Changes the credentials atomically (a refresh and an enrollment at once both land), then presents the newest set
    // in every open channel, all at once and each for at most CredentialUpdateTimeout: a peer that stopped reading holds
    // up neither the others nor the caller (its channel ends when the old credentials expire). Presenting is
    // serialized and always sends the set current at that moment, so an older change is never the last one heard.
    private async Task ChangeCredentialsAsync(Func<IReadOnlyList<CredentialChain>, IReadOnlyList<CredentialChain>> change, CancellationToken cancellationToken)
    {
        lock (_credentialsLock)
        {
            _credentials = change(_credentials);
        }

        await PresentAsync(_open.Keys, cancellationToken).ConfigureAwait(false);
    }

    private async Task PresentAsync(IEnumerable<AgentChannel> channels, CancellationToken cancellationToken)
    {
        await _presenting.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var current = Credentials;
            await Task.WhenAll(channels.Select(PresentOneAsync)).ConfigureAwait(false);

            async Task PresentOneAsync(AgentChannel channel)
            {
                try
                {
                    await channel.Channel.UpdateCredentialsAsync(current, cancellationToken).AsTask().WaitAsync(CredentialUpdateTimeout, Options.TimeProvider, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is SecureChannelException or TimeoutException)
                {
                    // Closed meanwhile (nothing to update), or a peer that reads nothing (it keeps the old set).
                }
            }
        }
        finally
        {
            _presenting.Release();
        }
    }

    /// <summary>
    /// Opens a secure channel to the authority at <paramref name="endpoint"/>, pinned to <paramref name="authority"/>.
    /// Without credentials for enrolling and refreshing (they need only the identity, and an expired or revoked
    /// credential would fail the handshake); with them for requests that need a role or a delegation.
    /// </summary>
    public async Task<AuthorityClient> ConnectToAuthorityAsync(IPEndPoint endpoint, Identifier authority, bool presentCredentials = false, CancellationToken cancellationToken = default)
    {
        var channel = await OpenAuthorityChannelAsync(endpoint, authority, presentCredentials, cancellationToken).ConfigureAwait(false);
        return new AuthorityClient(channel, new AuthorityClientOptions { TimeProvider = Options.TimeProvider, Logger = Options.LoggerFactory.CreateLogger<AuthorityClient>() });
    }

    /// <summary>
    /// A subscription to the authority's revocation lists (into <see cref="AgentClientOptions.Revocations"/>, so a
    /// revocation closes the affected open channels at once) and, when given, its policies; run it with
    /// <see cref="AuthoritySubscription.RunAsync"/>. It reconnects with back-off and catches up after an outage.
    /// </summary>
    public AuthoritySubscription CreateAuthoritySubscription(IPEndPoint endpoint, Identifier authority, PolicyBook? policies = null) =>
        new(
            token => OpenAuthorityChannelAsync(endpoint, authority, presentCredentials: false, token),
            Options.Revocations,
            policies,
            new AuthoritySubscriptionOptions
            {
                FirstBackoff = Options.FirstReconnectBackoff,
                MaxBackoff = Options.MaxReconnectBackoff,
                TimeProvider = Options.TimeProvider,
                Logger = Options.LoggerFactory.CreateLogger<AuthoritySubscription>(),
            });

    private async Task<SecureChannel> OpenAuthorityChannelAsync(IPEndPoint endpoint, Identifier authority, bool presentCredentials, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var pipe = await SocketPipe.ConnectAsync(endpoint, TimeSpan.FromSeconds(10), Options.TimeProvider, cancellationToken).ConfigureAwait(false);
        try
        {
            var options = await ChannelOptionsAsync(AccessPolicy.Parse($"peer.identifier == \"{authority}\""), cancellationToken, presentCredentials ? null : []).ConfigureAwait(false);
            return await SecureChannel.ConnectAsync(pipe, options, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await pipe.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Keeps this agent in step with its authority until <paramref name="stoppingToken"/> (or the agent's disposal):
    /// follows its revocation lists (and, when given, its policies), so a revoked peer's open channel closes at once;
    /// and refreshes the agent's own credential from that authority ahead of its expiry (docs/protocol.md §10.3),
    /// presenting the new one in every open channel, so no channel has to be re-opened. A long-running agent runs it
    /// for its whole life; without it, it serves revoked peers and stops working when its credential expires.
    /// </summary>
    /// <exception cref="AuthorityException">The authority refused a refresh for good (the credential was revoked or replaced), or was unreachable until the credential expired; following revocations stops with it.</exception>
    public async Task KeepUpWithAuthorityAsync(IPEndPoint endpoint, Identifier authority, PolicyBook? policies = null, CancellationToken stoppingToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, Stopping);
        var subscribed = CreateAuthoritySubscription(endpoint, authority, policies).RunAsync(stopping.Token);
        try
        {
            // Only a credential the authority issued to this agent directly can be refreshed there; a delegated one is
            // its delegator's to renew.
            var own = Credentials.FirstOrDefault(c => c.Credentials.Length == 1 && c.Leaf.Credential.Issuer == authority);
            if (own is null)
            {
                await subscribed.ConfigureAwait(false);
                return;
            }

            var refresher = new CredentialRefresher(
                token => ConnectToAuthorityAsync(endpoint, authority, presentCredentials: false, token),
                own,
                new CredentialRefresherOptions { TimeProvider = Options.TimeProvider, Logger = Options.LoggerFactory.CreateLogger<CredentialRefresher>() });
            refresher.Refreshed += async fresh =>
            {
                // In place of the chain it renews, matched by credential id: if the application replaced that chain
                // itself meanwhile, the refresh is not forced back in.
                var replaced = own.Leaf.Credential.Id;
                own = fresh;
                await ChangeCredentialsAsync(
                    all => [.. all.Select(c => c.Leaf.Credential.Id.AsSpan().SequenceEqual(replaced) ? fresh : c)],
                    stopping.Token).ConfigureAwait(false);
            };
            await refresher.RunAsync(stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Stopped.
        }
        finally
        {
            await stopping.CancelAsync().ConfigureAwait(false);
            try
            {
                await subscribed.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Stopped with the rest.
            }
        }
    }

    /// <summary>Enrolls with a one-time ticket in one call: the credential received is presented from then on, and returned.</summary>
    /// <exception cref="AuthorityException">The ticket is unknown, used, expired or foreign, or the authority is unavailable.</exception>
    /// <exception cref="System.Net.Sockets.SocketException">The authority could not be reached (refused, or no answer in 10 s).</exception>
    /// <exception cref="SecureChannelException">The authority did not prove the pinned identity, or the channel to it failed.</exception>
    public async Task<CredentialChain> EnrollAsync(IPEndPoint endpoint, Identifier authority, string ticket, CancellationToken cancellationToken = default)
    {
        var client = await ConnectToAuthorityAsync(endpoint, authority, presentCredentials: false, cancellationToken).ConfigureAwait(false);
        await using (client.ConfigureAwait(false))
        {
            var chain = await client.EnrollAsync(ticket, cancellationToken).ConfigureAwait(false);
            await ChangeCredentialsAsync(all => [.. all, chain], cancellationToken).ConfigureAwait(false);
            return chain;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Channels first, all at once, while their hops still carry what they were sending (each lingers for it);
        // then the hops.
        await Task.WhenAll(_open.Keys.Select(c => c.DisposeAsync().AsTask())).ConfigureAwait(false);
        await _stopping.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_running).ConfigureAwait(false);

        _incoming.Writer.TryComplete();
        while (_incoming.Reader.TryRead(out var pending))
        {
            await pending.RefuseAsync(RelayErrorCode.Refused, "The agent is stopping.").ConfigureAwait(false);
        }

        _stopping.Dispose();
        _channelKey.Dispose();
        Telemetry.Dispose();
    }

    // Open channels are known so a credential update reaches them; each forgets itself when it ends. A channel whose
    // handshake raced with an update (it presented the set before) is brought up to date at once.
    private async Task<AgentChannel> TrackAsync(SecureChannel secure, Circuit circuit, IReadOnlyList<CredentialChain> presented, CancellationToken cancellationToken)
    {
        var channel = new AgentChannel(secure, circuit, _messaging);
        _open[channel] = 0;
        Telemetry.ChannelTracked();
        _ = channel.Completion.ContinueWith(
            _ =>
            {
                _open.TryRemove(channel, out byte _);
                Telemetry.ChannelClosed();
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        try
        {
            if (!ReferenceEquals(Credentials, presented))
            {
                await PresentAsync([channel], cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            await channel.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return channel;
    }

    private async Task ReleaseRefusedAsync(Circuit circuit)
    {
        try
        {
            await circuit.Completion.WaitAsync(RefusalGrace, Options.TimeProvider, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or ObjectDisposedException)
        {
            // The opener did not close in time, or the agent is stopping (or stopped): reset it now.
        }
        finally
        {
            await circuit.DisposeAsync().ConfigureAwait(false);
        }
    }

    internal void OnIncoming(IncomingCircuit incoming)
    {
        if (!_incoming.Writer.TryWrite(incoming))
        {
            _ = incoming.RefuseAsync(RelayErrorCode.LimitExceeded, "The agent has too many channels waiting to be accepted.").AsTask();
        }
    }

    internal async Task<SecureChannelOptions> ChannelOptionsAsync(AccessPolicy? policy, CancellationToken cancellationToken, IReadOnlyList<CredentialChain>? credentials = null, Action<ChannelEvent>? events = null, bool sendAcknowledgements = true)
    {
        var (key, attestation) = await _channelKey.GetAsync(cancellationToken).ConfigureAwait(false);
        return new SecureChannelOptions
        {
            Identity = Options.Identity,
            ChannelKey = key,
            Attestation = attestation,
            Credentials = credentials ?? Credentials,
            Verifier = _verifier,
            Revocations = Options.Revocations,
            Policy = policy,
            Events = events,
            TimeProvider = Options.TimeProvider,
            Logger = Options.LoggerFactory.CreateLogger<SecureChannel>(),
            SendAcknowledgements = sendAcknowledgements,
        };
    }

    [LoggerMessage(EventId = 62, Level = LogLevel.Information, Message = "Incoming channel refused ({Code}): {Why}")]
    private static partial void LogRefusedIncoming(ILogger logger, ChannelErrorCode code, string why);
}
