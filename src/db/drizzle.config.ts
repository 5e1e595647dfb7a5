// drizzle.config: drizzle-kit's settings; `npm run db:generate` writes migrations/ from schema.ts.
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'sqlite',
  schema: './src/db/schema.ts',
  out: './migrations',
});
