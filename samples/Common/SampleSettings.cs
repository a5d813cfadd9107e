using System.Net;
using Microsoft.Extensions.Configuration;
using SecureChannels.Client;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;

namespace Samples.Common;

/// <summary>
/// What both samples read from configuration (appsettings.json, environment variables, command line): where the
/// authority and the relay are, how to recognise them, and the one-time enrollment ticket.
/// <list type="table">
/// <item><term><c>Authority:EndPoint</c></term><description>default <c>127.0.0.1:7400</c>, where <c>securechannels authority run</c> listens.</description></item>
/// <item><term><c>Authority:IdentityFile</c></term><description>default <c>authority.identity</c>: the authority's exported identity, the trust anchor. Its identifier is the one pinned.</description></item>
/// <item><term><c>Authority:Identifier</c></term><description>optional: when set, it must be the file's (a guard against the wrong file).</description></item>
/// <item><term><c>Relay:EndPoint</c></term><description>default <c>127.0.0.1:7300</c>, where <c>securechannels relay run</c> listens.</description></item>
/// <item><term><c>Relay:Identifier</c></term><description>default <c>relay.identity</c>: the relay's identifier (<c>I…</c>, as <c>relay run</c> prints it) or its exported identity file.</description></item>
/// <item><term><c>Ticket</c></term><description>the enrollment ticket (<c>sct1_…</c>), a secret: give it on the command line or in the environment, never in a file you commit. It is never printed or logged.</description></item>
/// </list>
/// Relative paths are resolved against the current directory, where the CLI commands wrote the files.
/// </summary>
public sealed class SampleSettings
{
    public const string DefaultAuthorityEndPoint = "127.0.0.1:7400";
    public const string DefaultAuthorityIdentityFile = "authority.identity";
    public const string DefaultRelayEndPoint = "127.0.0.1:7300";
    public const string DefaultRelayIdentifier = "relay.identity";

    private SampleSettings(IPEndPoint authorityEndPoint, VerifiedIdentity authority, RelayEndpoint relay, string ticket)
    {
        AuthorityEndPoint = authorityEndPoint;
        Authority = authority;
        Anchors = new TrustAnchors().Trust(authority);
        Relay = relay;
        Ticket = ticket;
    }

    /// <summary>Where the authority listens.</summary>
    public IPEndPoint AuthorityEndPoint { get; }

    /// <summary>The authority's verified identity, from its exported identity file.</summary>
    public VerifiedIdentity Authority { get; }

    /// <summary>Whom the agent trusts: credentials from this one authority, for peers and relays alike.</summary>
    public TrustAnchors Anchors { get; }

    /// <summary>The relay, pinned to its identifier: a relay that cannot prove it is refused.</summary>
    public RelayEndpoint Relay { get; }

    /// <summary>The one-time enrollment ticket. A secret: used once to enroll, never printed.</summary>
    public string Ticket { get; }

    /// <summary>Reads and checks the settings; every problem names the key to fix.</summary>
    /// <exception cref="SampleConfigurationException">A setting is missing or wrong.</exception>
    public static SampleSettings Read(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var authorityEndPoint = EndPoint(configuration, "Authority:EndPoint", DefaultAuthorityEndPoint);
        var authority = IdentityFile(configuration["Authority:IdentityFile"] is { Length: > 0 } file ? file : DefaultAuthorityIdentityFile, "Authority:IdentityFile");
        if (configuration["Authority:Identifier"] is { Length: > 0 } expected && expected != authority.Identifier.ToString())
        {
            throw new SampleConfigurationException($"Authority:Identifier {expected} is not the identifier of Authority:IdentityFile ({authority.Identifier}): one of them names another authority.");
        }

        var relayEndPoint = EndPoint(configuration, "Relay:EndPoint", DefaultRelayEndPoint);
        var relayText = configuration["Relay:Identifier"] is { Length: > 0 } relayId ? relayId : DefaultRelayIdentifier;
        var relayIdentifier = Identifier.TryParse(relayText, out var parsed) ? parsed : IdentityFile(relayText, "Relay:Identifier").Identifier;

        // Checked here, before any connection, so a truncated paste fails with the key's name. The ticket itself is
        // never part of a message: only whether it parses and which authority issued it.
        var ticket = configuration["Ticket"];
        if (string.IsNullOrWhiteSpace(ticket))
        {
            throw new SampleConfigurationException("Ticket is not set: pass the one-time ticket from 'securechannels authority ticket create' as --Ticket sct1_... (or the environment variable Ticket).");
        }

        ticket = ticket.Trim();
        if (!EnrollmentTicket.TryParse(ticket, out var parsedTicket))
        {
            throw new SampleConfigurationException("Ticket is not an enrollment ticket (sct1_ followed by the rest of the line 'authority ticket create' printed).");
        }

        if (!parsedTicket.IsFrom(authority.Identifier))
        {
            throw new SampleConfigurationException($"Ticket ({parsedTicket}) was issued by another authority than Authority:IdentityFile's ({authority.Identifier}).");
        }

        return new SampleSettings(authorityEndPoint, authority, new RelayEndpoint(relayEndPoint, relayIdentifier), ticket);
    }

    private static IPEndPoint EndPoint(IConfiguration configuration, string key, string fallback)
    {
        var text = configuration[key] is { Length: > 0 } value ? value : fallback;
        return IPEndPoint.TryParse(text, out var endPoint) && endPoint.Port != 0
            ? endPoint
            : throw new SampleConfigurationException($"{key} '{text}' is not an IP address and port, such as {fallback}.");
    }

    // An exported identity (securechannels identity export): the identity's signed history, verified here. It holds no
    // secret; trusting it means trusting whoever holds its current key.
    private static VerifiedIdentity IdentityFile(string path, string key)
    {
        var full = Path.GetFullPath(path);
        try
        {
            var bytes = File.ReadAllBytes(full);
            if (bytes.Length > IdentityLimits.MaxHistoryLength)
            {
                throw new SampleConfigurationException($"{key}: {full} is too large to be an identity file.");
            }

            return IdentityHistory.Decode(bytes).Verify();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new SampleConfigurationException($"{key}: {full} does not exist (export it with 'securechannels identity export --name NAME --out {path}').");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SampleConfigurationException($"{key}: cannot read {full}: {e.Message}");
        }
        catch (IdentityException e)
        {
            throw new SampleConfigurationException($"{key}: {full} is not a valid identity file ({e.Kind}): {e.Message}");
        }
    }
}

/// <summary>A setting is missing or wrong; the message names the configuration key.</summary>
public sealed class SampleConfigurationException : Exception
{
    public SampleConfigurationException()
    {
    }

    public SampleConfigurationException(string message)
        : base(message)
    {
    }

    public SampleConfigurationException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
