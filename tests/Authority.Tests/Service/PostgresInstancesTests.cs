using SecureChannels.Authority.Issuance;
using SecureChannels.Authority.Tests.Storage;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Authority.Tests.Service;

/// <summary>Two authority instances on one PostgreSQL database, as deployed for availability.</summary>
[Collection(PostgresServerDefinition.Name)]
public sealed class PostgresInstancesTests(PostgresServer server)
{
    [Fact]
    public async Task Two_instances_share_tickets_sequences_and_audit_and_each_pushes_what_the_other_published()
    {
        var database = await server.CreateDatabaseAsync();
        try
        {
            await using var kit = await AuthorityTestKit.CreateAsync();
            var settings = new Dictionary<string, string?> { ["Store"] = "Postgres", ["PostgresConnectionString"] = database };
            var a = await kit.StartAsync(settings);
            var b = await kit.StartAsync(settings);
            var operatorCaller = Caller.Operator(kit.Identity.Identifier);

            // A ticket made on one instance enrolls on the other (kit.ConnectAsync reaches the newest: b).
            var ticket = await a.Server.Service.CreateTicketAsync(operatorCaller, new TicketRequest(Principal.Parse("user:alice"), AttributeSet.Parse(["role=worker"]), TimeSpan.Zero, TimeSpan.Zero, 0));
            var agent = await kit.CreateAgentAsync();
            await (await kit.ConnectAsync(agent)).EnrollAsync(ticket.Ticket.Reveal());

            // Revocations on both at once: one sequence, no version written twice.
            await Task.WhenAll(Enumerable.Range(0, 10).Select(i => (i % 2 == 0 ? a : b).Server.Service.RevokeAsync(operatorCaller, RevocationEntry.ForPrincipal(new Principal(PrincipalKind.User, $"u{i}")), "bulk")));

            // A subscriber of b hears what a published, within b's poll of the store.
            var verifier = await kit.CreateAgentAsync();
            await (await kit.ConnectAsync(verifier)).SubscribeAsync(verifier.Revocations);
            var published = await a.Server.Service.RevokeAsync(operatorCaller, RevocationEntry.ForPrincipal(Principal.Parse("user:late")), "after subscribing");
            Assert.Equal(11UL, published);
            for (var step = 0; verifier.Revocations.Find(kit.Identity.Identifier)?.List.Sequence != published; step++)
            {
                Assert.True(step < 100, "The other instance did not push what the first published.");
                kit.Time.Advance(TimeSpan.FromSeconds(1));
                await Task.Delay(1);
            }

            Assert.Equal(11, verifier.Revocations.Find(kit.Identity.Identifier)!.List.Entries.Length);
            var audit = await b.Server.Service.VerifyAuditAsync();
            Assert.True(audit.IsIntact);
            Assert.Equal(13, audit.RecordsChecked); // ticket, enroll, 11 revocations
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Npgsql.NpgsqlConnection.ClearAllPools();
            await server.DropDatabaseAsync(database);
        }
    }
}
