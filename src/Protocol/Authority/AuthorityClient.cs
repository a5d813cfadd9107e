using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Protocol.Authority;

/// <summary>Options of an <see cref="AuthorityClient"/>.</summary>
public sealed record AuthorityClientOptions
{
    /// <summary>How long a request may wait for its reply before it fails as <see cref="AuthorityErrorCode.Unavailable"/>. Defaults to 10 s.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The clock for request timeouts.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where rejected pushes are logged (never a ticket or key).</summary>
    public ILogger Logger { get; init; } = NullLogger.Instance;
}

/// <summary>
/// The agent's (or relay's) end of a secure channel to an authority (docs/protocol.md §10): enroll with a
/// ticket, refresh and register credentials, manage tickets, revocations and policies when authorized, and
/// subscribe to revocation lists and policy documents, which are verified against the authority's identity
/// (the channel's verified peer) before they are applied. Requests may be issued concurrently.
/// </summary>
public sealed partial class AuthorityClient : IAsyncDisposable
{
    private readonly SecureChannel _channel;
    private readonly AuthorityClientOptions _options;
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource<AuthorityMessage>> _pending = new();
    private readonly Task _reader;
    private long _nextRequestId;
    private long _rejectedPushes;
    private volatile RevocationRegistry? _revocations;
    private volatile PolicyBook? _policies;

    /// <summary>Takes over <paramref name="channel"/>, a channel whose peer is the authority; the client reads every message on it.</summary>
    public AuthorityClient(SecureChannel channel, AuthorityClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(channel);
        _channel = channel;
        _options = options ?? new AuthorityClientOptions();
        _reader = Task.Run(ReadLoopAsync);
    }

    /// <summary>The authority's verified identity.</summary>
    public VerifiedIdentity Authority => _channel.Peer.Identity;

    /// <summary>The channel to the authority.</summary>
    public SecureChannel Channel => _channel;

    /// <summary>Completes when the channel to the authority ends; pending requests then fail as <see cref="AuthorityErrorCode.Unavailable"/>.</summary>
    public Task Completion => _reader;

    /// <summary>Pushed documents ignored because they were older than held, equivocating, or badly signed.</summary>
    public long RejectedPushes => Interlocked.Read(ref _rejectedPushes);

    /// <summary>Raised after a pushed revocation list was verified and accepted into the registry.</summary>
    public event Action<SignedRevocationList>? RevocationsApplied;

    /// <summary>Enrolls this side's identity with a ticket; returns the credential chain the authority issued.</summary>
    /// <exception cref="AuthorityException">The ticket is unknown, used, expired or foreign; or the authority is unavailable.</exception>
    public async Task<CredentialChain> EnrollAsync(string ticket, CancellationToken cancellationToken = default)
    {
        if (!EnrollmentTicket.TryParse(ticket, out var parsed))
        {
            throw new AuthorityException(AuthorityErrorCode.Malformed, "That is not an enrollment ticket.");
        }

        var raw = parsed.ToBytes();
        try
        {
            var writer = new CanonicalWriter();
            writer.WriteArray(1);
            writer.WriteBytes(raw);
            return DecodeChain(await RequestAsync(AuthorityMessageType.Enroll, writer.ToArray(), cancellationToken).ConfigureAwait(false));
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(raw);
        }
    }

    /// <summary>Asks for a fresh credential replacing <paramref name="credentialId"/> (which this side holds); returns the new chain.</summary>
    /// <exception cref="AuthorityException">The credential is unknown, revoked or not this side's; or the authority is unavailable.</exception>
    public async Task<CredentialChain> RefreshAsync(ReadOnlyMemory<byte> credentialId, CancellationToken cancellationToken = default) =>
        DecodeChain(await RequestAsync(AuthorityMessageType.Refresh, IdBody(credentialId.Span), cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// Records a delegation this side made (it is the issuer of <paramref name="chain"/>'s leaf), and returns the
    /// chain with the authority's receipt added: what to hand the sub-agent, so verifiers that accept only
    /// registered delegations accept it.
    /// </summary>
    /// <exception cref="AuthorityException">The chain does not verify, is not this side's delegation, or is revoked; or the receipt is not the authority's.</exception>
    public async Task<CredentialChain> RegisterDelegationAsync(CredentialChain chain, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(chain);
        var writer = new CanonicalWriter();
        writer.WriteArray(1);
        writer.WriteBytes(chain.Encoded);
        var body = await RequestAsync(AuthorityMessageType.RegisterDelegation, writer.ToArray(), cancellationToken).ConfigureAwait(false);
        SignedDelegationReceipt receipt;
        try
        {
            receipt = SignedDelegationReceipt.Decode(body);
        }
        catch (WireFormatException e)
        {
            throw new AuthorityException(AuthorityErrorCode.Malformed, $"The authority's receipt is malformed: {e.Message}", e);
        }

        return receipt.Covers(chain.Leaf, Authority)
            ? chain.WithRegistration(receipt)
            : throw new AuthorityException(AuthorityErrorCode.Malformed, "The authority's receipt does not cover the registered delegation.");
    }

    /// <summary>Creates a one-time enrollment ticket (needs the enroller or admin role).</summary>
    public async Task<IssuedTicket> CreateTicketAsync(TicketRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return IssuedTicket.Decode(await RequestAsync(AuthorityMessageType.CreateTicket, request.Encode(), cancellationToken).ConfigureAwait(false));
    }

    /// <summary>Revokes; returns the sequence of the revocation list that carries it.</summary>
    public async Task<ulong> RevokeAsync(RevocationEntry entry, string reason, CancellationToken cancellationToken = default) =>
        RevokeRequest.DecodeSequence(await RequestAsync(AuthorityMessageType.Revoke, new RevokeRequest(entry, reason).Encode(), cancellationToken).ConfigureAwait(false));

    /// <summary>Queries the delegation registry.</summary>
    public async Task<IReadOnlyList<RegistryEntry>> QueryAsync(RegistryQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        return RegistryEntry.DecodeList(await RequestAsync(AuthorityMessageType.Query, query.Encode(), cancellationToken).ConfigureAwait(false));
    }

    /// <summary>Publishes a new version of <paramref name="resource"/>'s policy (needs the admin role); returns its version.</summary>
    public async Task<ulong> PublishPolicyAsync(string resource, string text, CancellationToken cancellationToken = default) =>
        RevokeRequest.DecodeSequence(await RequestAsync(AuthorityMessageType.PublishPolicy, new PublishPolicyRequest(resource, text).Encode(), cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// Subscribes: the authority sends what <paramref name="revocations"/> and <paramref name="policies"/> lack, then
    /// every new version as it is published. Each is verified against the authority's identity and merged;
    /// older, equivocating or badly signed ones are ignored and counted in <see cref="RejectedPushes"/>.
    /// </summary>
    public async Task SubscribeAsync(RevocationRegistry revocations, PolicyBook? policies = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(revocations);
        _revocations = revocations;
        _policies = policies;
        var held = revocations.Find(Authority.Identifier)?.List.Sequence ?? 0;
        var request = new SubscribeRequest(held, policies?.Versions ?? new Dictionary<string, ulong>());
        await RequestAsync(AuthorityMessageType.Subscribe, request.Encode(), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _channel.DisposeAsync().ConfigureAwait(false);
        await _reader.ConfigureAwait(false);
    }

    private static byte[] IdBody(ReadOnlySpan<byte> id)
    {
        var writer = new CanonicalWriter();
        writer.WriteArray(1);
        writer.WriteBytes(id);
        return writer.ToArray();
    }

    private static CredentialChain DecodeChain(byte[] body)
    {
        try
        {
            return CredentialChain.Decode(body);
        }
        catch (Exception e) when (e is WireFormatException or CredentialException)
        {
            throw new AuthorityException(AuthorityErrorCode.Malformed, $"The authority's reply is not a credential chain: {e.Message}", e);
        }
    }

    private async Task<byte[]> RequestAsync(AuthorityMessageType type, byte[] body, CancellationToken cancellationToken)
    {
        var id = (ulong)Interlocked.Increment(ref _nextRequestId);
        var reply = new TaskCompletionSource<AuthorityMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = reply;
        try
        {
            if (_reader.IsCompleted)
            {
                throw new AuthorityException(AuthorityErrorCode.Unavailable, "The channel to the authority is closed.");
            }

            try
            {
                await _channel.SendAsync(new AuthorityMessage(type, id, body).Encode(), cancellationToken).ConfigureAwait(false);
            }
            catch (SecureChannelException e)
            {
                throw new AuthorityException(AuthorityErrorCode.Unavailable, $"The channel to the authority failed: {e.Code}.", e);
            }

            AuthorityMessage message;
            try
            {
                message = await reply.Task.WaitAsync(_options.RequestTimeout, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException e)
            {
                throw new AuthorityException(AuthorityErrorCode.Unavailable, $"The authority did not answer within {_options.RequestTimeout}.", e);
            }

            if (message.Type == AuthorityMessageType.Refusal)
            {
                throw message.ToException();
            }

            return message.Body;
        }
        catch (WireFormatException e)
        {
            throw new AuthorityException(AuthorityErrorCode.Malformed, $"The authority's reply is malformed: {e.Message}", e);
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            while (await _channel.ReceiveAsync().ConfigureAwait(false) is { } received)
            {
                AuthorityMessage message;
                using (received)
                {
                    try
                    {
                        message = AuthorityMessage.Decode(received.Payload.ToArray());
                    }
                    catch (WireFormatException e)
                    {
                        LogRejected(_options.Logger, "message", e.Message);
                        Interlocked.Increment(ref _rejectedPushes);
                        continue;
                    }
                }

                switch (message.Type)
                {
                    case AuthorityMessageType.Refusal when message.RequestId == 0:
                        // The authority could not even read a request's id: which one is unknown, so none is answered.
                        foreach (var pending in _pending.Values)
                        {
                            pending.TrySetResult(message);
                        }

                        break;
                    case AuthorityMessageType.Reply or AuthorityMessageType.Refusal:
                        if (_pending.TryGetValue(message.RequestId, out var waiter))
                        {
                            waiter.TrySetResult(message);
                        }

                        break;
                    case AuthorityMessageType.Revocations:
                        ApplyRevocations(message.Body);
                        break;
                    case AuthorityMessageType.Policy:
                        ApplyPolicy(message.Body);
                        break;
                    default:
                        LogRejected(_options.Logger, "message", $"unexpected type {message.Type}");
                        break;
                }
            }
        }
        catch (SecureChannelException)
        {
            // The channel ended; its Completion says why. Pending requests fail below.
        }
        finally
        {
            foreach (var pending in _pending.Values)
            {
                pending.TrySetException(new AuthorityException(AuthorityErrorCode.Unavailable, "The channel to the authority closed before it answered."));
            }
        }
    }

    private void ApplyRevocations(byte[] body)
    {
        if (_revocations is not { } registry)
        {
            return;
        }

        try
        {
            var list = SignedRevocationList.Decode(body);
            var result = registry.Merge(list, Authority);
            if (result == RevocationMergeResult.Accepted)
            {
                NotifyApplied(list);
            }
            else if (result != RevocationMergeResult.AlreadyKnown)
            {
                Interlocked.Increment(ref _rejectedPushes);
                LogRejected(_options.Logger, "revocation list", result.ToString());
            }
        }
        catch (CredentialException e)
        {
            Interlocked.Increment(ref _rejectedPushes);
            LogRejected(_options.Logger, "revocation list", e.Message);
        }
    }

    // A failing application handler must not end the subscription: the list is applied either way.
    private void NotifyApplied(SignedRevocationList list)
    {
        try
        {
            RevocationsApplied?.Invoke(list);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogHandlerFailed(_options.Logger, e);
        }
    }

    private void ApplyPolicy(byte[] body)
    {
        if (_policies is not { } book)
        {
            return;
        }

        try
        {
            var result = book.Merge(SignedPolicyDocument.Decode(body), Authority);
            if (result is RevocationMergeResult.Stale or RevocationMergeResult.Equivocation)
            {
                Interlocked.Increment(ref _rejectedPushes);
                LogRejected(_options.Logger, "policy document", result.ToString());
            }
        }
        catch (Exception e) when (e is CredentialException or WireFormatException)
        {
            Interlocked.Increment(ref _rejectedPushes);
            LogRejected(_options.Logger, "policy document", e.Message);
        }
    }

    [LoggerMessage(EventId = 43, Level = LogLevel.Error, Message = "A RevocationsApplied handler failed")]
    private static partial void LogHandlerFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "Ignored a pushed {What} from the authority: {Why}")]
    private static partial void LogRejected(ILogger logger, string what, string why);
}
