using Microsoft.Extensions.Logging;
using SecureChannels.Authority.Issuance;
using SecureChannels.Authority.Publication;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Wire;

namespace SecureChannels.Authority.Hosting;

/// <summary>
/// One caller's secure channel to the authority: requests are read, authorized and answered in order; a
/// subscription adds pushes on the same channel. Any bad input gets a typed refusal, never a crash.
/// </summary>
internal sealed partial class AuthoritySession(SecureChannel channel, AuthorityService service, PublicationHub hub, ILogger logger)
{
    // One ENROLL per connection (and a couple of retries): a flood must open a connection, with its handshake, per try.
    private const int MaxEnrollmentsPerConnection = 3;
    private int _enrollments;
    private Subscriber? _subscriber;
    private Protocol.Credentials.SignedRevocationList? _unpublished;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (await channel.ReceiveAsync(cancellationToken).ConfigureAwait(false) is { } received)
            {
                AuthorityMessage reply;
                using (received)
                {
                    reply = await HandleAsync(received.Payload, cancellationToken).ConfigureAwait(false);
                }

                try
                {
                    await channel.SendAsync(reply.Encode(), cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    // Published after the reply: revoking one's own credential closes this very channel.
                    if (_unpublished is { } list)
                    {
                        _unpublished = null;
                        service.Publish(list);
                    }
                }
            }
        }
        catch (Exception e) when (e is SecureChannelException or OperationCanceledException)
        {
            // The caller left, was cut, or the authority is stopping.
        }
        finally
        {
            if (_subscriber is not null)
            {
                await hub.UnsubscribeAsync(_subscriber).ConfigureAwait(false);
                _subscriber.Dispose();
            }

            await channel.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<AuthorityMessage> HandleAsync(ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        ulong id = 0;
        try
        {
            var request = AuthorityMessage.Decode(payload);
            id = request.RequestId;
            var caller = new Caller(channel.Peer.Identifier, channel.Peer);
            var body = request.Type switch
            {
                AuthorityMessageType.Enroll => await EnrollAsync(caller, request.Body, cancellationToken).ConfigureAwait(false),
                AuthorityMessageType.Refresh => (await service.RefreshAsync(caller, ReadSingleBytes(request.Body, "refresh", CredentialLimits.CredentialIdLength, CredentialLimits.CredentialIdLength), cancellationToken).ConfigureAwait(false)).Encoded,
                AuthorityMessageType.RegisterDelegation => await RegisterAsync(caller, request.Body, cancellationToken).ConfigureAwait(false),
                AuthorityMessageType.Subscribe => Subscribe(request.Body),
                AuthorityMessageType.CreateTicket => (await service.CreateTicketAsync(caller, TicketRequest.Decode(request.Body), cancellationToken).ConfigureAwait(false)).Encode(),
                AuthorityMessageType.Revoke => await RevokeAsync(caller, request.Body, cancellationToken).ConfigureAwait(false),
                AuthorityMessageType.Query => RegistryEntry.EncodeList(await service.QueryAsync(caller, RegistryQuery.Decode(request.Body), cancellationToken).ConfigureAwait(false)),
                AuthorityMessageType.PublishPolicy => await PublishAsync(caller, request.Body, cancellationToken).ConfigureAwait(false),
                _ => throw new AuthorityException(AuthorityErrorCode.Malformed, $"{request.Type} is not a request."),
            };
            return body.Length <= AuthorityLimits.MaxMessageLength - 64
                ? new AuthorityMessage(AuthorityMessageType.Reply, id, body)
                : AuthorityMessage.Refuse(id, AuthorityErrorCode.OutOfRange, "The reply would exceed the largest message; narrow the query.");
        }
        catch (AuthorityException e)
        {
            LogRefused(logger, channel.Peer.Identifier, e.Code, e.Message);
            return AuthorityMessage.Refuse(id, e.Code, e.Message);
        }
        catch (WireFormatException e)
        {
            return AuthorityMessage.Refuse(id, AuthorityErrorCode.Malformed, e.Message);
        }
        catch (CredentialException e)
        {
            return AuthorityMessage.Refuse(id, AuthorityErrorCode.CredentialInvalid, e.Message);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A bug must cost one request a typed refusal, never the caller's channel or the authority: the
            // transaction was rolled back (disposed uncommitted), and the details go to the log, not to the caller.
            LogFailed(logger, e);
            return AuthorityMessage.Refuse(id, AuthorityErrorCode.Internal, "The authority failed; nothing was changed.");
        }
    }

    private async Task<byte[]> EnrollAsync(Caller caller, byte[] body, CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _enrollments) > MaxEnrollmentsPerConnection)
        {
            throw new AuthorityException(AuthorityErrorCode.RateLimited, "Too many enrollment attempts on one connection.");
        }

        var raw = ReadSingleBytes(body, "enroll", 1, 256);
        if (raw.Length != AuthorityLimits.TicketAuthorityTagLength + AuthorityLimits.TicketIdLength + AuthorityLimits.TicketSecretLength)
        {
            throw new AuthorityException(AuthorityErrorCode.TicketUnknown, "That is not a ticket.");
        }

        var ticket = EnrollmentTicket.FromBytes(raw);
        System.Security.Cryptography.CryptographicOperations.ZeroMemory(raw);
        return (await service.EnrollAsync(caller, ticket, cancellationToken).ConfigureAwait(false)).Encoded;
    }

    private async Task<byte[]> RegisterAsync(Caller caller, byte[] body, CancellationToken cancellationToken)
    {
        var chain = CredentialChain.Decode(ReadSingleBytes(body, "register", 1, CredentialLimits.MaxChainPresentationLength));
        return (await service.RegisterDelegationAsync(caller, chain, cancellationToken).ConfigureAwait(false)).Encoded;
    }

    private async Task<byte[]> RevokeAsync(Caller caller, byte[] body, CancellationToken cancellationToken)
    {
        var request = RevokeRequest.Decode(body);
        var (sequence, published) = await service.RevokeUnpublishedAsync(caller, request.Entry, request.Reason, cancellationToken).ConfigureAwait(false);
        _unpublished = published;
        return RevokeRequest.EncodeSequence(sequence);
    }

    private async Task<byte[]> PublishAsync(Caller caller, byte[] body, CancellationToken cancellationToken)
    {
        var request = PublishPolicyRequest.Decode(body);
        return RevokeRequest.EncodeSequence(await service.PublishPolicyAsync(caller, request.Resource, request.Text, cancellationToken).ConfigureAwait(false));
    }

    private byte[] Subscribe(byte[] body)
    {
        var held = SubscribeRequest.Decode(body);
        if (_subscriber is not null)
        {
            throw new AuthorityException(AuthorityErrorCode.Malformed, "This channel is subscribed already.");
        }

        _subscriber = hub.Subscribe(channel, held);
        return [];
    }

    private static byte[] ReadSingleBytes(byte[] body, string structure, int min, int max) =>
        CanonicalEncoding.Decode(body, structure, max + 16, (ref CanonicalReader r) =>
        {
            r.ReadArray(structure, 1, 1);
            return r.ReadBytes("value", min, max);
        }, static value =>
        {
            var writer = new CanonicalWriter();
            writer.WriteArray(1);
            writer.WriteBytes(value);
            return writer.ToArray();
        });

    [LoggerMessage(EventId = 32, Level = LogLevel.Error, Message = "A request failed unexpectedly")]
    private static partial void LogFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 30, Level = LogLevel.Information, Message = "Refused a request from {Caller}: {Code}: {Detail}")]
    private static partial void LogRefused(ILogger logger, Protocol.Identity.Identifier caller, AuthorityErrorCode code, string detail);
}
