using System.Net;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using SecureChannels.Client.Relays;
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
public sealed class AgentClient : IAsyncDisposable
{
    // Incoming circuits wait here until the application accepts them; past this, a new one is refused at once
    // (LimitExceeded), so a burst of opens never grows memory without bound.
    private const int MaxPendingIncoming = 64;

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
    private IReadOnlyList<CredentialChain> _credentials;
    private int _disposed;

    /// <summary>Creates the agent; <see cref="StartAsync"/> connects it.</summary>
    public AgentClient(AgentClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.FirstReconnectBackoff, TimeSpan.Zero, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxReconnectBackoff, options.FirstReconnectBackoff, nameof(options));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.MaxReconnectBackoff, TimeSpan.FromDays(1), nameof(options));
        Options = options;
        _credentials = options.Credentials;
        _channelKey = new AttestedChannelKey(options.Identity, time: options.TimeProvider);
        _verifier = new CredentialVerifier(options.Anchors, options.Revocations, options.TimeProvider);
        var logger = options.LoggerFactory.CreateLogger<AgentClient>();
        _relays = [.. options.Relays.Select(r => new RelayConnection(r, this, logger))];
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

    /// <summary>Starts keeping hops to every relay; completes when each is up once.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        foreach (var relay in _relays)
        {
            _running.Add(Task.Run(() => relay.RunAsync(_stopping.Token), CancellationToken.None));
        }

        await Task.WhenAll(_relays.Select(r => r.WhenConnectedAsync(cancellationToken))).ConfigureAwait(false);
    }

    /// <summary>
    /// Opens a secure channel to <paramref name="address"/> (<c>identifier</c>, <c>name</c> or <c>name@relay</c>)
    /// through the first relay whose hop is up (waiting for one), and checks the peer against the agent's policy.
    /// </summary>
    /// <exception cref="RelayException">The relay could not open the circuit (unreachable, refused, ...).</exception>
    /// <exception cref="SecureChannelException">The handshake failed or either side's policy refused.</exception>
    public async Task<AgentChannel> OpenChannelAsync(string address, CancellationToken cancellationToken = default)
    {
        if (_relays.Count == 0)
        {
            throw new InvalidOperationException("The agent has no relay to open channels through.");
        }

        var link = _relays.Select(r => r.Current).FirstOrDefault(l => l is not null)
            ?? await await Task.WhenAny(_relays.Select(r => r.WhenConnectedAsync(cancellationToken))).ConfigureAwait(false);
        var circuit = await link.OpenCircuitAsync(address, cancellationToken).ConfigureAwait(false);
        try
        {
            var presented = Credentials;
            var channel = await SecureChannel.ConnectAsync(circuit, await ChannelOptionsAsync(Options.Policy, cancellationToken, presented).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            return await TrackAsync(new AgentChannel(channel, circuit), presented, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await circuit.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The next channel a peer opened to this agent and the agent's policy allowed. Circuits whose handshake fails or
    /// whose peer the policy refuses are closed (the peer hears why) and skipped.
    /// </summary>
    public async Task<AgentChannel> AcceptChannelAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var incoming = await _incoming.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            Circuit circuit;
            try
            {
                circuit = await incoming.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (RelayException)
            {
                continue; // The opener gave up or the hop ended meanwhile.
            }

            try
            {
                var presented = Credentials;
                var channel = await SecureChannel.AcceptAsync(circuit, await ChannelOptionsAsync(Options.Policy, cancellationToken, presented).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                return await TrackAsync(new AgentChannel(channel, circuit), presented, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                await circuit.DisposeAsync().ConfigureAwait(false);
                throw;
            }
            catch (SecureChannelException)
            {
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
    public async Task UpdateCredentialsAsync(IReadOnlyList<CredentialChain> credentials, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        lock (_credentialsLock)
        {
            _credentials = credentials;
        }

        foreach (var channel in _open.Keys)
        {
            try
            {
                await channel.Channel.UpdateCredentialsAsync(credentials, cancellationToken).ConfigureAwait(false);
            }
            catch (SecureChannelException)
            {
                // Closed meanwhile: nothing to update.
            }
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

    /// <summary>Enrolls with a one-time ticket in one call: the credential received is presented from then on, and returned.</summary>
    /// <exception cref="AuthorityException">The ticket is unknown, used, expired or foreign, or the authority is unavailable.</exception>
    public async Task<CredentialChain> EnrollAsync(IPEndPoint endpoint, Identifier authority, string ticket, CancellationToken cancellationToken = default)
    {
        var client = await ConnectToAuthorityAsync(endpoint, authority, presentCredentials: false, cancellationToken).ConfigureAwait(false);
        await using (client.ConfigureAwait(false))
        {
            var chain = await client.EnrollAsync(ticket, cancellationToken).ConfigureAwait(false);
            IReadOnlyList<CredentialChain> all;
            lock (_credentialsLock)
            {
                all = [.. _credentials, chain];
            }

            await UpdateCredentialsAsync(all, cancellationToken).ConfigureAwait(false);
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

        await _stopping.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_running).ConfigureAwait(false);
        foreach (var channel in _open.Keys)
        {
            await channel.DisposeAsync().ConfigureAwait(false);
        }

        _incoming.Writer.TryComplete();
        while (_incoming.Reader.TryRead(out var pending))
        {
            await pending.RefuseAsync(RelayErrorCode.Refused, "The agent is stopping.").ConfigureAwait(false);
        }

        _stopping.Dispose();
        _channelKey.Dispose();
    }

    // Open channels are known so a credential update reaches them; each forgets itself when it ends. A channel whose
    // handshake raced with an update (it presented the set before) is brought up to date at once.
    private async Task<AgentChannel> TrackAsync(AgentChannel channel, IReadOnlyList<CredentialChain> presented, CancellationToken cancellationToken)
    {
        _open[channel] = 0;
        _ = channel.Completion.ContinueWith(_ => _open.TryRemove(channel, out byte _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        if (Credentials is var now && !ReferenceEquals(now, presented))
        {
            await channel.Channel.UpdateCredentialsAsync(now, cancellationToken).ConfigureAwait(false);
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

    internal async Task<SecureChannelOptions> ChannelOptionsAsync(AccessPolicy? policy, CancellationToken cancellationToken, IReadOnlyList<CredentialChain>? credentials = null)
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
            TimeProvider = Options.TimeProvider,
            Logger = Options.LoggerFactory.CreateLogger<SecureChannel>(),
        };
    }
}
