using SecureChannels.Authority.Issuance;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Authority.Tests.Service;

public sealed class EnrollmentTests
{
    private static TicketRequest Ticket(string principal = "user:alice", params string[] attributes) =>
        new(Principal.Parse(principal), AttributeSet.Parse(attributes.Length == 0 ? ["role=worker"] : attributes), TimeSpan.Zero, TimeSpan.Zero, 1);

    [Fact]
    public async Task An_agent_enrolls_with_a_ticket_and_opens_a_channel_with_the_credential_it_received()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var worker = await kit.CreateAgentAsync();
        var verifier = await kit.CreateAgentAsync();

        var chain = await kit.EnrollAsync(worker, "user:alice", ["role=worker", "env=prod"]);

        Assert.Equal(worker.Identifier, chain.Leaf.Credential.Subject);
        Assert.Equal(kit.Identity.Identifier, chain.Leaf.Credential.Issuer);
        Assert.Equal(kit.Time.GetUtcNow() + TimeSpan.FromHours(1), chain.Leaf.Credential.NotAfter);
        var (initiator, responder) = await kit.ChannelAsync(worker, $"peer.identifier == \"{verifier.Identifier}\"", verifier, "subject.role == \"worker\" && peer.principal == \"user:alice\"");
        Assert.Equal("user:alice", responder.Peer.Principal.ToString());
        Assert.Equal(["prod"], responder.Peer.Attributes.Entries["env"]);
        await AuthorityTestKit.AssertCarriesAsync(initiator, responder);
    }

    [Fact]
    public async Task A_ticket_works_once()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var ticket = await kit.Service.CreateTicketAsync(Caller.Operator(kit.Identity.Identifier), Ticket());
        var first = await kit.ConnectAsync(await kit.CreateAgentAsync());
        var second = await kit.ConnectAsync(await kit.CreateAgentAsync());

        await first.EnrollAsync(ticket.Ticket.Reveal());
        var reused = await Assert.ThrowsAsync<AuthorityException>(() => second.EnrollAsync(ticket.Ticket.Reveal()));

        Assert.Equal(AuthorityErrorCode.TicketUsed, reused.Code);
        Assert.DoesNotContain(ticket.Ticket.Reveal(), reused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_agents_racing_with_one_ticket_get_one_credential()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var ticket = (await kit.Service.CreateTicketAsync(Caller.Operator(kit.Identity.Identifier), Ticket())).Ticket.Reveal();
        var clients = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ => await kit.ConnectAsync(await kit.CreateAgentAsync())));

        var outcomes = await Task.WhenAll(clients.Select(async c =>
        {
            try
            {
                await c.EnrollAsync(ticket);
                return (AuthorityErrorCode?)null;
            }
            catch (AuthorityException e)
            {
                return e.Code;
            }
        }));

        Assert.Single(outcomes, o => o is null);
        Assert.All(outcomes.Where(o => o is not null), o => Assert.Equal(AuthorityErrorCode.TicketUsed, o));
    }

    [Fact]
    public async Task Expired_forged_unknown_and_foreign_tickets_get_typed_refusals()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var operatorCaller = Caller.Operator(kit.Identity.Identifier);
        var expiring = await kit.Service.CreateTicketAsync(operatorCaller, Ticket() with { TicketLifetime = TimeSpan.FromMinutes(5) });
        var real = await kit.Service.CreateTicketAsync(operatorCaller, Ticket());
        var agent = await kit.CreateAgentAsync();

        // A forged ticket: the real id and authority tag, another secret.
        var raw = real.Ticket.ToBytes();
        raw[^1] ^= 0x01;
        var forged = EnrollmentTicket.FromBytes(raw).Reveal();
        var unknown = EnrollmentTicket.Create(kit.Identity.Identifier).Reveal();
        var foreign = EnrollmentTicket.Create((await kit.CreateAgentAsync()).Identifier).Reveal();

        kit.Time.Advance(TimeSpan.FromMinutes(5));
        var client = await kit.ConnectAsync(agent);
        Assert.Equal(AuthorityErrorCode.TicketExpired, (await Assert.ThrowsAsync<AuthorityException>(() => client.EnrollAsync(expiring.Ticket.Reveal()))).Code);
        client = await kit.ConnectAsync(agent);
        Assert.Equal(AuthorityErrorCode.TicketUnknown, (await Assert.ThrowsAsync<AuthorityException>(() => client.EnrollAsync(forged))).Code);
        Assert.Equal(AuthorityErrorCode.TicketUnknown, (await Assert.ThrowsAsync<AuthorityException>(() => client.EnrollAsync(unknown))).Code);
        client = await kit.ConnectAsync(agent);
        Assert.Equal(AuthorityErrorCode.TicketForeign, (await Assert.ThrowsAsync<AuthorityException>(() => client.EnrollAsync(foreign))).Code);
        Assert.Equal(AuthorityErrorCode.Malformed, (await Assert.ThrowsAsync<AuthorityException>(() => client.EnrollAsync("sct1_not-a-ticket"))).Code);

        // The real ticket is still good after all that.
        await client.EnrollAsync(real.Ticket.Reveal());
    }

    [Fact]
    public async Task An_enrollment_flood_is_refused_before_any_database_work()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync(new Dictionary<string, string?> { ["EnrollmentRate"] = "1", ["EnrollmentBurst"] = "3" });
        var unknown = Enumerable.Range(0, 3).Select(_ => EnrollmentTicket.Create(kit.Identity.Identifier).Reveal()).ToArray();
        var codes = new List<AuthorityErrorCode>();
        foreach (var ticket in unknown.Concat(unknown))
        {
            var client = await kit.ConnectAsync(await kit.CreateAgentAsync());
            codes.Add((await Assert.ThrowsAsync<AuthorityException>(() => client.EnrollAsync(ticket))).Code);
        }

        Assert.Equal([.. Enumerable.Repeat(AuthorityErrorCode.TicketUnknown, 3), .. Enumerable.Repeat(AuthorityErrorCode.RateLimited, 3)], codes);

        // The bucket refills with the (fake) clock.
        kit.Time.Advance(TimeSpan.FromSeconds(1));
        var later = await kit.ConnectAsync(await kit.CreateAgentAsync());
        Assert.Equal(AuthorityErrorCode.TicketUnknown, (await Assert.ThrowsAsync<AuthorityException>(() => later.EnrollAsync(unknown[0]))).Code);
    }

    [Fact]
    public async Task One_connection_cannot_keep_guessing_tickets()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var client = await kit.ConnectAsync(await kit.CreateAgentAsync());
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(AuthorityErrorCode.TicketUnknown, (await Assert.ThrowsAsync<AuthorityException>(() => client.EnrollAsync(EnrollmentTicket.Create(kit.Identity.Identifier).Reveal()))).Code);
        }

        Assert.Equal(AuthorityErrorCode.RateLimited, (await Assert.ThrowsAsync<AuthorityException>(() => client.EnrollAsync(EnrollmentTicket.Create(kit.Identity.Identifier).Reveal()))).Code);
    }

    [Theory]
    [InlineData("x'); DROP TABLE credentials; --")]
    [InlineData("quote \" and \\ backslash")]
    [InlineData("tab\tnewline\nbell\u0007")]
    [InlineData("emoji 🔐 and ünïcode")]
    public async Task Hostile_attribute_values_and_principals_are_stored_and_returned_exactly(string value)
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var agent = await kit.CreateAgentAsync();
        var attributes = AttributeSet.Create([KeyValuePair.Create("note", (IEnumerable<string>)[value])]);
        var principal = new Principal(PrincipalKind.User, value);
        var ticket = await kit.Service.CreateTicketAsync(Caller.Operator(kit.Identity.Identifier), new TicketRequest(principal, attributes, TimeSpan.Zero, TimeSpan.Zero, 0));

        var chain = await (await kit.ConnectAsync(agent)).EnrollAsync(ticket.Ticket.Reveal());

        Assert.Equal(value, Assert.Single(chain.Leaf.Credential.Attributes.Entries["note"]));
        Assert.Equal(principal, chain.Leaf.Credential.Principal);
        var found = await kit.Service.QueryAsync(Caller.Operator(kit.Identity.Identifier), new RegistryQuery(RegistryQueryKind.ActingFor, principal.ToString()));
        Assert.Equal(value, Assert.Single(Assert.Single(found).Attributes.Entries["note"]));
        Assert.True((await kit.Service.VerifyAuditAsync()).IsIntact);
    }

    [Fact]
    public async Task Tickets_are_created_by_enrollers_who_cannot_grant_roles_and_not_by_anyone_else()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var enroller = await kit.CreateAgentAsync();
        await kit.EnrollAsync(enroller, "system:provisioner", ["authority-role=enroller"]);
        var nobody = await kit.CreateAgentAsync();
        await kit.EnrollAsync(nobody, "user:alice", ["role=worker"]);

        var asEnroller = await kit.ConnectAsync(enroller);
        var issued = await asEnroller.CreateTicketAsync(Ticket("user:bob"));
        Assert.True(issued.ExpiresAt > kit.Time.GetUtcNow());
        Assert.Equal(AuthorityErrorCode.Unauthorized, (await Assert.ThrowsAsync<AuthorityException>(() => asEnroller.CreateTicketAsync(Ticket("user:bob", "authority-role=admin")))).Code);
        Assert.Equal(AuthorityErrorCode.Unauthorized, (await Assert.ThrowsAsync<AuthorityException>(async () => await (await kit.ConnectAsync(nobody)).CreateTicketAsync(Ticket()))).Code);

        // The enroller's ticket works.
        var chain = await (await kit.ConnectAsync(await kit.CreateAgentAsync())).EnrollAsync(issued.Ticket.Reveal());
        Assert.Equal("user:bob", chain.Leaf.Credential.Principal.ToString());
    }

    [Fact]
    public async Task Ticket_lifetimes_beyond_the_limits_are_refused()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var caller = Caller.Operator(kit.Identity.Identifier);
        Assert.Equal(AuthorityErrorCode.OutOfRange, (await Assert.ThrowsAsync<AuthorityException>(() => kit.Service.CreateTicketAsync(caller, Ticket() with { TicketLifetime = TimeSpan.FromDays(8) }))).Code);
        Assert.Equal(AuthorityErrorCode.OutOfRange, (await Assert.ThrowsAsync<AuthorityException>(() => kit.Service.CreateTicketAsync(caller, Ticket() with { CredentialLifetime = TimeSpan.FromDays(2) }))).Code);
    }
}
