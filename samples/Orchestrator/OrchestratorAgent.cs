using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Samples.Common;
using SecureChannels.Client;
using SecureChannels.Client.Delegation;
using SecureChannels.Client.Messaging;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Protocol.Messaging;
using SecureChannels.Protocol.Policy;

namespace Samples.Orchestrator;

/// <summary>What a run did: its exit code, the worker's replies, and how the sub-agent's channel ended.</summary>
/// <param name="ExitCode">0: every step happened as expected; 1: a step failed; 2: a setting is wrong.</param>
/// <param name="Replies">The quotes the worker returned, in order.</param>
/// <param name="BadRequestFault">How the worker answered the deliberately bad request (expected: BadRequest).</param>
/// <param name="SubAgentChannelClosed">How the sub-agent's channel ended after the revocation (expected: CredentialRevoked).</param>
public sealed record OrchestratorRun(int ExitCode, IReadOnlyList<QuoteReply> Replies, MessageFaultCode? BadRequestFault, ChannelCloseInfo? SubAgentChannelClosed);

/// <summary>
/// The orchestrator: enrolls with its own ticket, spawns a sub-agent with a narrower credential, has it ask the worker
/// for quotes over an end-to-end channel through the relay, then revokes it and watches its channel close.
/// </summary>
public static class OrchestratorAgent
{
    // What the sub-agent asks the worker, then one request the worker must refuse (a quantity of 0).
    private static readonly QuoteRequest[] Requests = [new("widget", 4), new("gadget", 1), new("gizmo", 12)];
    private static readonly QuoteRequest InvalidRequest = new("widget", 0);

    /// <summary>Runs once, writing what happens to <paramref name="output"/> (never a ticket or a key).</summary>
    public static async Task<OrchestratorRun> RunAsync(IConfiguration configuration, TextWriter output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(output);
        SampleSettings settings;
        OrchestratorOptions options;
        try
        {
            settings = SampleSettings.Read(configuration);
            options = OrchestratorOptions.Read(configuration.GetSection("Orchestrator"));
        }
        catch (SampleConfigurationException e)
        {
            await output.WriteLineAsync($"error: {e.Message}");
            return new OrchestratorRun(2, [], null, null);
        }

        var replies = new List<QuoteReply>();
        MessageFaultCode? fault = null;
        ChannelCloseInfo? closed = null;
        var step = "enrolling at the authority";
        try
        {
            // A fresh in-memory Ed25519 key per run: this orchestrator lives for one task. One that runs for long keeps
            // its key (an encrypted FileKeyVault, or an HSM or KMS behind ISigner) so its identifier survives restarts.
            using var signer = InMemorySigner.Generate();
            var identity = await AgentIdentity.CreateAsync(signer, TimeProvider.System, cancellationToken);
            await using var orchestrator = new AgentClient(new AgentClientOptions
            {
                Identity = identity,
                Anchors = settings.Anchors,
                Relays = [settings.Relay],

                // Checked on the peer of every channel it (and, inherited, its sub-agents) opens. The relay routes the
                // name 'worker' only to a holder of relay-name=worker, but the relay sees only ciphertext and is not
                // trusted with more: checking the attribute end to end means a relay that routes elsewhere gets refused.
                Policy = options.WorkerPolicy,

                // It opens channels and accepts none: no address to register, no incoming queue.
                Listen = false,
            });

            var credential = (await orchestrator.EnrollAsync(settings.AuthorityEndPoint, settings.Authority.Identifier, settings.Ticket, cancellationToken)).Leaf.Credential;
            await output.WriteLineAsync($"orchestrator {orchestrator.Identifier} enrolled: acts for {credential.Principal} with {credential.Attributes}, until {credential.NotAfter:u}");

            // Its own channel to the authority, presenting the credential: registering and revoking delegations need it.
            step = "connecting to the authority";
            await using var authority = await orchestrator.ConnectToAuthorityAsync(settings.AuthorityEndPoint, settings.Authority.Identifier, presentCredentials: true, cancellationToken);

            // The sub-agent: a new identity in this process, with a credential delegated from the orchestrator's that can
            // only be narrower (a subset of the attributes, a shorter life). Registered with the authority, so the
            // authority knows it acts for the same user and can revoke it. It shares the orchestrator's relays, trust and
            // policy; the orchestrator itself needs no hop of its own for that.
            step = "spawning the sub-agent";
            await using var sub = await orchestrator.SpawnSubAgentAsync(
                new SubAgentOptions { Attributes = options.SubAgentAttributes, Lifetime = options.SubAgentLifetime, Registrar = authority },
                cancellationToken);
            var delegated = sub.Credential.Leaf.Credential;
            await output.WriteLineAsync($"sub-agent    {sub.Identifier} spawned: acts for {delegated.Principal} with {delegated.Attributes}, until {delegated.NotAfter:u} (delegated, registered: {sub.Credential.Registrations.Length > 0})");

            step = $"opening a channel to '{options.Worker}'";
            await using var channel = await sub.Client.OpenChannelAsync(options.Worker, cancellationToken);
            var peer = channel.Peer;
            await output.WriteLineAsync($"channel to {options.Worker}: peer {peer.Identifier} acts for {peer.Principal}, chain length {peer.ChainLength}, attributes {peer.Attributes}, until {peer.NotAfter:u}");

            step = "asking for quotes";
            foreach (var request in Requests)
            {
                var reply = await channel.RequestAsync<QuoteRequest, QuoteReply>(request, options.RequestTimeout, cancellationToken);
                replies.Add(reply);
                await output.WriteLineAsync($"quote        {reply.Quantity} x {reply.Item} = {reply.Total}, approved for {reply.ApprovedFor}");
                if (reply.ApprovedFor != delegated.Principal.ToString())
                {
                    // The worker names whom its handshake verified; anything else means it saw another principal.
                    await output.WriteLineAsync($"error: the quote was approved for {reply.ApprovedFor}, not {delegated.Principal}");
                    return new OrchestratorRun(1, replies, fault, closed);
                }
            }

            // A request the worker must refuse: the fault comes back as an AgentRequestException with its code and reason.
            try
            {
                var unexpected = await channel.RequestAsync<QuoteRequest, QuoteReply>(InvalidRequest, options.RequestTimeout, cancellationToken);
                await output.WriteLineAsync($"error: the worker quoted {unexpected.Quantity} x {unexpected.Item}");
                return new OrchestratorRun(1, replies, fault, closed);
            }
            catch (AgentRequestException e) when (e.Failure == RequestFailure.Faulted)
            {
                fault = e.FaultCode;
                await output.WriteLineAsync($"refused      {InvalidRequest.Quantity} x {InvalidRequest.Item}: {e.Message}");
            }

            // Withdraw the delegation. The authority pushes a new revocation list to its subscribers; the worker is one,
            // so it closes the sub-agent's channel at once (CredentialRevoked) instead of serving it until it expires.
            step = "revoking the sub-agent";
            var started = Stopwatch.GetTimestamp();
            var sequence = await sub.RevokeAsync(authority, "quotes collected", cancellationToken);
            await output.WriteLineAsync($"revoked      the sub-agent's credential (revocation list {sequence})");
            step = "waiting for the worker to close the revoked channel";
            closed = await channel.Completion.WaitAsync(options.RevocationTimeout, cancellationToken);
            await output.WriteLineAsync($"closed       the channel to {options.Worker}: {closed.Code}{(closed.FromPeer ? $" (told by {options.Worker})" : string.Empty)} after {Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms");
            if (closed.Code != ChannelErrorCode.CredentialRevoked)
            {
                await output.WriteLineAsync($"error: expected CredentialRevoked, got {closed.Code}: {closed.Reason}");
                return new OrchestratorRun(1, replies, fault, closed);
            }

            await output.WriteLineAsync("done");
            return new OrchestratorRun(0, replies, fault, closed);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await output.WriteLineAsync($"cancelled while {step}");
            return new OrchestratorRun(1, replies, fault, closed);
        }
        catch (Exception e) when (IsFailedStep(e))
        {
            // The exception messages name codes and reasons, never the ticket (the library keeps it out of them).
            await output.WriteLineAsync($"error: {step}: {e.GetType().Name}: {e.Message}");
            return new OrchestratorRun(1, replies, fault, closed);
        }
    }

    private static bool IsFailedStep(Exception e) =>
        e is AuthorityException or SecureChannelException or IOException or SocketException or TimeoutException or AgentRequestException or CredentialException;

    /// <summary>The orchestrator's own settings, section <c>Orchestrator</c>.</summary>
    private sealed record OrchestratorOptions(string Worker, AccessPolicy WorkerPolicy, AttributeSet SubAgentAttributes, TimeSpan SubAgentLifetime, TimeSpan RequestTimeout, TimeSpan RevocationTimeout)
    {
        public static OrchestratorOptions Read(IConfiguration section)
        {
            var worker = section["Worker"] is { Length: > 0 } name ? name : "worker";
            var policyText = section["WorkerPolicy"] is { Length: > 0 } text ? text : "\"worker\" in subject.relay-name";
            if (!AccessPolicy.TryParse(policyText, out var policy, out var syntax))
            {
                throw new SampleConfigurationException($"Orchestrator:WorkerPolicy is not a policy: {syntax.Message}");
            }

            AttributeSet attributes;
            try
            {
                attributes = AttributeSet.Parse(section.GetSection("SubAgentAttributes").Get<string[]>() ?? ["tool=quotes"]);
            }
            catch (Exception e) when (e is FormatException or ArgumentException or CredentialException)
            {
                throw new SampleConfigurationException($"Orchestrator:SubAgentAttributes: {e.Message}");
            }

            return new OrchestratorOptions(
                worker,
                policy,
                attributes,
                Duration(section, "SubAgentLifetime", TimeSpan.FromMinutes(10)),
                Duration(section, "RequestTimeout", TimeSpan.FromSeconds(10)),
                Duration(section, "RevocationTimeout", TimeSpan.FromSeconds(15)));
        }

        private static TimeSpan Duration(IConfiguration section, string key, TimeSpan fallback)
        {
            var text = section[key];
            if (string.IsNullOrEmpty(text))
            {
                return fallback;
            }

            return TimeSpan.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var value) && value > TimeSpan.Zero
                ? value
                : throw new SampleConfigurationException($"Orchestrator:{key} '{text}' is not a positive duration such as {fallback}.");
        }
    }
}
