// projects.repo: projects and their members. Input: validated values. Side effects: SQL reads and writes.
import { and, eq, sql } from 'drizzle-orm';
import { prepared, type Db } from '../client.js';
import { projectMembers, projects } from '../schema.js';

export type Project = typeof projects.$inferSelect;
export type ProjectMember = typeof projectMembers.$inferSelect;

export function createProjectsRepository({ db }: { db: Db }) {
  // Prepared once: these run for every recipient of every message.
  const byId = prepared(() => db.select().from(projects).where(eq(projects.id, sql.placeholder('id'))).prepare());
  const levelOf = prepared(() => db
    .select({ level: projectMembers.accessLevel })
    .from(projectMembers)
    .where(and(eq(projectMembers.projectId, sql.placeholder('projectId')), eq(projectMembers.userId, sql.placeholder('userId'))))
    .prepare());
  return {
    create: (input: typeof projects.$inferInsert): Project => db.insert(projects).values(input).returning().get(),
    findById: (id: number): Project | undefined => byId().get({ id }),
    update: (id: number, values: Partial<Omit<typeof projects.$inferInsert, 'id'>>): Project =>
      db.update(projects).set(values).where(eq(projects.id, id)).returning().get() as Project,
    /**
     * By path as written, else in any case, as GitLab's find_by_full_path: a relay may lower-case an
     * address. (Paths differing only in case are told apart by the exact match.)
     */
    findByPath: (path: string): Project | undefined =>
      db.select().from(projects).where(eq(projects.path, path)).get() ??
      db.select().from(projects).where(sql`lower(${projects.path}) = lower(${path})`).orderBy(projects.id).get(),
    findByServiceDeskKey: (key: string): Project[] => db.select().from(projects).where(eq(projects.serviceDeskKey, key)).all(),
    /** The project whose Service Desk custom email this is (stored in lower case). */
    findByServiceDeskCustomEmail: (address: string): Project | undefined => db.select().from(projects).where(eq(projects.serviceDeskCustomEmail, address.toLowerCase())).get(),
    /** Adds a member, or changes the access level of an existing one. */
    setMember(input: { projectId: number; userId: number; accessLevel: number }): ProjectMember {
      return db
        .insert(projectMembers)
        .values(input)
        .onConflictDoUpdate({
          target: [projectMembers.projectId, projectMembers.userId],
          set: { accessLevel: input.accessLevel },
        })
        .returning()
        .get();
    },
    /** The member's access level, or 0 for a non-member. */
    accessLevel(projectId: number, userId: number): number {
      return levelOf().get({ projectId, userId })?.level ?? 0;
    },
  };
}
